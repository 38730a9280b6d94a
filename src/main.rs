fn main() -> std::process::ExitCode {
    stackctl::cli::main()
}
