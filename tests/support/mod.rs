//! A sealed environment for running the real `stackctl` binary: a temporary directory
//! holding a stack, no inherited environment but PATH, and filters for temp paths.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod edge;
pub mod shop;

pub struct TestEnvironment {
    pub directory: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

pub fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl TestEnvironment {
    /// An empty directory.
    pub fn new() -> Self {
        TestEnvironment {
            directory: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A copy of the reference stack (stack.toml, .env.example, apps/).
    pub fn reference() -> Self {
        let environment = TestEnvironment::new();
        let root = repository();
        environment.copy_file(&root.join("stack.toml"), "stack.toml");
        environment.copy_file(&root.join(".env.example"), ".env.example");
        copy_sources(&root.join("apps"), &environment.path().join("apps"));
        environment
    }

    pub fn path(&self) -> &Path {
        self.directory.path()
    }

    pub fn write(&self, name: &str, contents: &str) {
        let target = self.path().join(name);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(target, contents).unwrap();
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name)).unwrap_or_default()
    }

    fn copy_file(&self, from: &Path, to: &str) {
        std::fs::copy(from, self.path().join(to)).unwrap();
    }

    pub fn command(&self, arguments: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_stackctl"));
        command
            .args(arguments)
            .current_dir(self.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("NO_COLOR", "1");
        command
    }

    pub fn run(&self, arguments: &[&str]) -> Run {
        Run::from(self.command(arguments).output().expect("run stackctl"))
    }

    pub fn run_with_env(&self, arguments: &[&str], variables: &[(&str, &str)]) -> Run {
        let mut command = self.command(arguments);
        for (name, value) in variables {
            command.env(name, value);
        }
        Run::from(command.output().expect("run stackctl"))
    }

    /// Replaces this environment's temporary path so snapshots are stable.
    pub fn filter(&self, text: &str) -> String {
        text.replace(&self.path().display().to_string(), "[TEMP]")
    }
}

/// Directories `testing/build-shop-images.sh` fills (and git ignores): the React app's
/// packages and bundle, Flower's wheel. Plans of a copy without them are the same on a
/// fresh checkout and after the images were built.
const BUILT_BY_PREPARE: [&str; 3] = ["node_modules", "dist", "wheels"];

/// Copies the sources under `from`, leaving out what the image build script generates.
pub fn copy_sources(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if !BUILT_BY_PREPARE.contains(&entry.file_name().to_string_lossy().as_ref()) {
                copy_sources(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
