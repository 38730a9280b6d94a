//! The shell scripts the SSH transport runs for file and lock operations, and the
//! parsers of what they print.
//!
//! Each [`crate::Host`] file operation is one remote command, because every command
//! pays for a round trip and a login shell. The scripts are POSIX `sh`, run as
//! `timeout -s KILL <seconds> sh -c '<script>'` so that the user's login shell (bash,
//! zsh, dash…) only parses plain words and one single-quoted script. Every path is quoted by [`crate::quote::quote`];
//! contents travel over stdin, never through the command line.
//!
//! Everything here is pure: the builders return strings, the parsers take bytes, and
//! the unit tests run the scripts through the local `sh` to check them.

use std::time::Duration;

use crate::quote::{quote, QuoteError};

/// Exit status of the lock script when the lock is already held (`EX_TEMPFAIL`).
pub const LOCK_HELD_STATUS: u32 = 75;

/// Returns a fresh random token (32 hex digits) used to frame output and to name
/// temporary files. Unpredictable, so no file content can forge a frame.
pub fn nonce() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness (should not happen on Linux): fall back to something
        // unique per call, which still avoids accidental collisions.
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default();
        bytes = (time ^ u128::from(std::process::id())).to_le_bytes();
    }
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Returns the command line handed to the login shell: `exec sh -c '<script>'`, or
/// with a `time_limit`, `exec timeout -s KILL <seconds> sh -c '<script>'`.
///
/// The limit makes the host kill a command that hangs (a stuck mount, a FIFO): closing
/// the SSH channel does not stop it, and OpenSSH refuses signal requests for root
/// sessions, so without it a hung command would keep one of the server's
/// `MaxSessions` slots for good. The limit is one second longer than `time_limit` so
/// that the client's own timeout, with its clearer message, fires first.
pub fn sh_command(script: &str, time_limit: Option<Duration>) -> Result<String, QuoteError> {
    let script = quote(script)?;
    Ok(match time_limit {
        Some(limit) => {
            let seconds = limit.as_secs() + u64::from(limit.subsec_nanos() > 0) + 1;
            format!("exec timeout -s KILL {seconds} sh -c {script}")
        }
        None => format!("exec sh -c {script}"),
    })
}

/// Whether a command built by [`sh_command`] with a time limit failed only because the
/// host has no `timeout` program (neither coreutils nor busybox): then it never ran.
pub fn timeout_program_missing(exit_status: Option<u32>, stderr: &[u8]) -> bool {
    let stderr = String::from_utf8_lossy(stderr);
    exit_status == Some(127)
        && stderr.contains("timeout")
        && (stderr.contains("not found") || stderr.contains("No such file"))
}

/// The directory part of `path`, if it has one worth creating (`/a/b` → `/a`).
fn parent_directory(path: &str) -> Option<&str> {
    let trimmed = path.trim_end_matches('/');
    let (parent, _) = trimmed.rsplit_once('/')?;
    if parent.is_empty() {
        None // directly under `/`
    } else {
        Some(parent)
    }
}

/// The line every script that prints something starts with. What comes before it is
/// noise from the login shell (a `~/.bashrc` that echoes), never taken as output.
fn begin_marker(nonce: &str) -> String {
    format!("{nonce} begin\n")
}

fn begin_marker_command(nonce: &str) -> String {
    format!("printf '%s\\n' '{nonce} begin'\n")
}

/// Returns what follows the begin marker of `nonce` in `output`.
pub fn after_begin_marker<'output>(
    output: &'output [u8],
    nonce: &str,
) -> Result<&'output [u8], String> {
    let marker = begin_marker(nonce);
    find(output, marker.as_bytes())
        .map(|found| &output[found + marker.len()..])
        .ok_or_else(|| "the command's output lacks its begin marker".to_string())
}

/// Script that prints every file followed by a trailer line
/// `\n<nonce> <index> <ok|missing|failed>\n`, so contents of any bytes, missing files
/// and unreadable ones are told apart in one command.
pub fn read_files_script(paths: &[String], nonce: &str) -> Result<String, QuoteError> {
    let mut script = begin_marker_command(nonce);
    for (index, path) in paths.iter().enumerate() {
        let path = quote(path)?;
        script.push_str(&format!(
            "if [ ! -e {path} ]; then s=missing; elif cat -- {path}; then s=ok; else s=failed; fi\n\
             printf '\\n%s %s\\n' '{nonce} {index}' \"$s\"\n"
        ));
    }
    Ok(script)
}

/// What the read script said about one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileRead {
    Contents(Vec<u8>),
    Missing,
    /// The file exists but could not be read (a directory, no permission); the reason
    /// is on the command's stderr.
    Failed,
}

/// Splits the output of [`read_files_script`] into `count` results.
pub fn parse_read_files(output: &[u8], count: usize, nonce: &str) -> Result<Vec<FileRead>, String> {
    let output = after_begin_marker(output, nonce)?;
    let mut results = Vec::with_capacity(count);
    let mut position = 0;
    for index in 0..count {
        let trailer = format!("\n{nonce} {index} ");
        let found = find(&output[position..], trailer.as_bytes())
            .ok_or_else(|| format!("the output ended before the frame of file {index}"))?;
        let contents = &output[position..position + found];
        let status_start = position + found + trailer.len();
        let status_length = find(&output[status_start..], b"\n")
            .ok_or_else(|| format!("the frame of file {index} is not terminated"))?;
        let status = &output[status_start..status_start + status_length];
        results.push(match status {
            b"ok" => FileRead::Contents(contents.to_vec()),
            b"missing" => FileRead::Missing,
            b"failed" => FileRead::Failed,
            other => {
                return Err(format!(
                    "unexpected status `{}` for file {index}",
                    String::from_utf8_lossy(other)
                ))
            }
        });
        position = status_start + status_length + 1;
    }
    Ok(results)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Script that writes stdin to a temporary file in `temp_dir`, sets `mode`, and renames
/// it over `path`; the parent directories are created first. The temporary file is
/// created under `umask 077`, so a secret is never readable by others, not even for
/// the moment before `chmod`.
pub fn write_file_script(
    path: &str,
    mode: u32,
    temp_dir: &str,
    nonce: &str,
) -> Result<String, QuoteError> {
    let temporary = quote(&format!(
        "{}/.stackctl-{nonce}.tmp",
        temp_dir.trim_end_matches('/')
    ))?;
    let mut directories = vec![quote(temp_dir)?];
    if let Some(parent) = parent_directory(path) {
        directories.push(quote(parent)?);
    }
    Ok(format!(
        "set -e\n\
         tmp={temporary}\n\
         mkdir -p -- {directories}\n\
         trap 'rm -f -- \"$tmp\"' EXIT\n\
         umask 077\n\
         cat > \"$tmp\"\n\
         chmod {mode:o} -- \"$tmp\"\n\
         mv -f -- \"$tmp\" {path}\n",
        directories = directories.join(" "),
        mode = mode & 0o7777,
        path = quote(path)?,
    ))
}

/// Script that takes the lock directory `path` with `mkdir` (atomic: exactly one of
/// two racing callers succeeds) and stores stdin as its `details` file. When the lock
/// is held it prints the begin marker and the holder's details, and exits with
/// [`LOCK_HELD_STATUS`].
pub fn lock_script(path: &str, nonce: &str) -> Result<String, QuoteError> {
    let details = quote(&format!("{}/details", path.trim_end_matches('/')))?;
    let parent = match parent_directory(path) {
        Some(parent) => format!("mkdir -p -- {} || exit 1\n", quote(parent)?),
        None => String::new(),
    };
    let lock = quote(path)?;
    let begin = begin_marker_command(nonce);
    Ok(format!(
        "{parent}\
         if error=$(mkdir -- {lock} 2>&1); then\n\
         \x20 cat > {details} || {{ rm -rf -- {lock}; exit 1; }}\n\
         \x20 exit 0\n\
         fi\n\
         if [ -d {lock} ]; then\n\
         \x20 {begin}\
         \x20 cat -- {details} 2>/dev/null; exit {LOCK_HELD_STATUS}\n\
         fi\n\
         printf '%s\\n' \"$error\" >&2\n\
         exit 1\n"
    ))
}

/// An error message when `path` must not be handed to `rm -rf` (empty, or `/`).
pub fn refuse_dangerous_removal(path: &str) -> Option<String> {
    if path.trim_end_matches('/').is_empty() {
        Some(format!(
            "refusing to remove `{path}`: the lock path must name a directory below `/`"
        ))
    } else {
        None
    }
}

/// Script that removes the lock directory and its details.
pub fn unlock_script(path: &str) -> Result<String, QuoteError> {
    Ok(format!("rm -rf -- {}\n", quote(path)?))
}

/// Script that removes one file; a missing file is not an error.
pub fn remove_file_script(path: &str) -> Result<String, QuoteError> {
    Ok(format!("rm -f -- {}\n", quote(path)?))
}

/// Lists the files directly in `directory` (not subdirectories), each name followed by a
/// NUL byte; nothing when the directory does not exist.
pub fn list_files_script(directory: &str, nonce: &str) -> Result<String, QuoteError> {
    let mut script = begin_marker_command(nonce);
    script.push_str(&format!(
        "cd -- {} 2>/dev/null || exit 0\n\
         for f in * .[!.]* ..?*; do\n\
         if [ -L \"$f\" ] || {{ [ -e \"$f\" ] && [ ! -d \"$f\" ]; }}; then printf '%s\\0' \"$f\"; fi\n\
         done\n",
        quote(directory)?
    ));
    Ok(script)
}

/// The sorted names [`list_files_script`] printed.
pub fn parse_list_files(output: &[u8], nonce: &str) -> Result<Vec<String>, String> {
    let listed = after_begin_marker(output, nonce)?;
    let mut names: Vec<String> = listed
        .split(|byte| *byte == 0)
        .filter(|name| !name.is_empty())
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    /// Runs `script` with the local `sh`, feeding `stdin`; returns (status, stdout, stderr).
    fn run(script: &str, stdin: &[u8]) -> (i32, Vec<u8>, String) {
        let command = sh_command(script, Some(Duration::from_secs(30))).unwrap();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).ok();
        let output = child.wait_with_output().unwrap();
        (
            output.status.code().unwrap_or(-1),
            output.stdout,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    #[test]
    fn commands_run_under_a_time_limit_one_second_past_the_client_timeout() {
        assert_eq!(sh_command("true", None).unwrap(), "exec sh -c 'true'");
        assert_eq!(
            sh_command("true", Some(Duration::from_secs(60))).unwrap(),
            "exec timeout -s KILL 61 sh -c 'true'"
        );
        assert_eq!(
            sh_command("true", Some(Duration::from_millis(1500))).unwrap(),
            "exec timeout -s KILL 3 sh -c 'true'"
        );
    }

    #[test]
    fn a_hung_command_is_killed_by_its_time_limit() {
        let started = std::time::Instant::now();
        let command = sh_command("sleep 30", Some(Duration::from_millis(500))).unwrap();
        let status = Command::new("sh").arg("-c").arg(&command).status().unwrap();
        assert!(!status.success());
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_missing_timeout_program_is_recognised() {
        assert!(timeout_program_missing(
            Some(127),
            b"sh: 1: exec: timeout: not found\n"
        ));
        assert!(timeout_program_missing(
            Some(127),
            b"bash: line 1: exec: timeout: not found\n"
        ));
        assert!(!timeout_program_missing(
            Some(127),
            b"sh: 1: docker: not found\n"
        ));
        assert!(!timeout_program_missing(Some(1), b"timeout: not found"));
    }

    #[test]
    fn nonces_are_32_hex_digits_and_differ() {
        let (first, second) = (nonce(), nonce());
        assert_eq!(first.len(), 32);
        assert!(first.bytes().all(|byte| byte.is_ascii_hexdigit()));
        assert_ne!(first, second);
    }

    #[test]
    fn parents_are_found_only_below_root() {
        assert_eq!(
            parent_directory("/etc/traefik/traefik.yml"),
            Some("/etc/traefik")
        );
        assert_eq!(parent_directory("/etc/"), None);
        assert_eq!(parent_directory("/file"), None);
        assert_eq!(parent_directory("relative"), None);
        assert_eq!(parent_directory("a/b"), Some("a"));
    }

    #[test]
    fn list_files_names_the_files_of_a_directory_and_nothing_else() {
        let directory = tempfile::tempdir().unwrap();
        let base = directory.path().to_str().unwrap();
        std::fs::write(format!("{base}/route-web.yml"), b"").unwrap();
        std::fs::write(format!("{base}/.hidden.yml"), b"").unwrap();
        std::fs::write(format!("{base}/with space; $(id).yml"), b"").unwrap();
        std::fs::create_dir(format!("{base}/subdirectory")).unwrap();
        let nonce = nonce();
        let (status, stdout, _) = run(&list_files_script(base, &nonce).unwrap(), b"");
        assert_eq!(status, 0);
        assert_eq!(
            parse_list_files(&stdout, &nonce).unwrap(),
            vec![".hidden.yml", "route-web.yml", "with space; $(id).yml"]
        );
        let missing = format!("{base}/missing");
        let (status, stdout, _) = run(&list_files_script(&missing, &nonce).unwrap(), b"");
        assert_eq!(status, 0);
        assert_eq!(
            parse_list_files(&stdout, &nonce).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn read_files_frames_contents_missing_and_unreadable_files() {
        let directory = tempfile::tempdir().unwrap();
        let base = directory.path().to_str().unwrap();
        let present = format!("{base}/present");
        // Contents that try to look like a frame, and no trailing newline.
        std::fs::write(&present, b"line\n0 ok\n\x00binary").unwrap();
        let empty = format!("{base}/empty");
        std::fs::write(&empty, b"").unwrap();
        let paths = vec![present, format!("{base}/missing"), empty, base.to_string()];
        let nonce = nonce();
        let (status, stdout, _) = run(&read_files_script(&paths, &nonce).unwrap(), b"");
        assert_eq!(status, 0);
        let results = parse_read_files(&stdout, paths.len(), &nonce).unwrap();
        assert_eq!(
            results,
            vec![
                FileRead::Contents(b"line\n0 ok\n\x00binary".to_vec()),
                FileRead::Missing,
                FileRead::Contents(Vec::new()),
                FileRead::Failed, // a directory
            ]
        );
    }

    #[test]
    fn truncated_read_output_is_an_error() {
        let nonce = "abc";
        assert!(
            parse_read_files(b"x\nabc 0 ok\n", 1, nonce).is_err(),
            "no begin marker"
        );
        assert!(parse_read_files(b"abc begin\ncontents", 1, nonce).is_err());
        assert!(parse_read_files(b"abc begin\nx\nabc 0 ok", 1, nonce).is_err());
        assert!(parse_read_files(b"abc begin\nx\nabc 0 strange\n", 1, nonce).is_err());
    }

    #[test]
    fn login_shell_noise_before_the_begin_marker_is_ignored() {
        let nonce = "abc";
        assert_eq!(
            parse_read_files(
                b"Welcome!\nabc begin\nx\nabc 0 ok\n\nabc 1 missing\n",
                2,
                nonce
            )
            .unwrap(),
            vec![FileRead::Contents(b"x".to_vec()), FileRead::Missing]
        );
    }

    #[test]
    fn write_file_renames_a_private_temporary_into_place_with_the_mode() {
        use std::os::unix::fs::PermissionsExt;
        let directory = tempfile::tempdir().unwrap();
        let base = directory.path().to_str().unwrap();
        let path = format!("{base}/new/dir/it's $(x).yml");
        let temp_dir = format!("{base}/tmp");
        let script = write_file_script(&path, 0o640, &temp_dir, &nonce()).unwrap();
        let (status, _, stderr) = run(&script, b"contents\n");
        assert_eq!(status, 0, "{stderr}");
        assert_eq!(std::fs::read(&path).unwrap(), b"contents\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
        assert_eq!(
            std::fs::read_dir(&temp_dir).unwrap().count(),
            0,
            "no temporary left"
        );
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_behind() {
        let directory = tempfile::tempdir().unwrap();
        let base = directory.path().to_str().unwrap();
        let temp_dir = format!("{base}/tmp");
        // The target's parent is a file, so `mkdir -p` fails.
        std::fs::write(format!("{base}/file"), b"").unwrap();
        let script =
            write_file_script(&format!("{base}/file/child"), 0o644, &temp_dir, &nonce()).unwrap();
        let (status, _, stderr) = run(&script, b"x");
        assert_ne!(status, 0);
        assert!(!stderr.is_empty());
        let leftovers = std::fs::read_dir(&temp_dir)
            .map(|entries| entries.count())
            .unwrap_or(0);
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn lock_is_taken_once_and_reports_its_holder() {
        let directory = tempfile::tempdir().unwrap();
        let path = format!("{}/locks/stack.lock", directory.path().to_str().unwrap());
        let nonce = nonce();
        let script = lock_script(&path, &nonce).unwrap();
        let (status, _, stderr) = run(&script, b"alice@laptop pid 42");
        assert_eq!(status, 0, "{stderr}");
        let (status, stdout, _) = run(&script, b"bob@desk pid 7");
        assert_eq!(status as u32, LOCK_HELD_STATUS);
        assert_eq!(
            after_begin_marker(&stdout, &nonce).unwrap(),
            b"alice@laptop pid 42"
        );
        let (status, _, _) = run(&unlock_script(&path).unwrap(), b"");
        assert_eq!(status, 0);
        assert!(!std::path::Path::new(&path).exists());
    }

    #[test]
    fn lock_failures_other_than_held_are_errors() {
        let directory = tempfile::tempdir().unwrap();
        let base = directory.path().to_str().unwrap();
        std::fs::write(format!("{base}/file"), b"").unwrap();
        let (status, _, stderr) = run(
            &lock_script(&format!("{base}/file/lock"), "n").unwrap(),
            b"x",
        );
        assert_eq!(status, 1);
        assert!(!stderr.is_empty());
    }

    #[test]
    fn removal_of_root_is_refused() {
        assert!(refuse_dangerous_removal("/").is_some());
        assert!(refuse_dangerous_removal("").is_some());
        assert!(refuse_dangerous_removal("///").is_some());
        assert!(refuse_dangerous_removal("/var/lock/stackctl").is_none());
    }

    #[test]
    fn remove_file_ignores_missing_files() {
        let directory = tempfile::tempdir().unwrap();
        let path = format!("{}/-n", directory.path().to_str().unwrap());
        std::fs::write(&path, b"").unwrap();
        assert_eq!(run(&remove_file_script(&path).unwrap(), b"").0, 0);
        assert!(!std::path::Path::new(&path).exists());
        assert_eq!(run(&remove_file_script(&path).unwrap(), b"").0, 0);
    }

    #[test]
    fn nul_in_a_path_is_rejected_before_anything_runs() {
        assert!(read_files_script(&["a\0b".to_string()], "n").is_err());
        assert!(write_file_script("a\0b", 0o644, "/tmp", "n").is_err());
        assert!(lock_script("a\0b", "n").is_err());
    }
}
