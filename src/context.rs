//! Inputs lowering needs from the filesystem, gathered once up front so that lowering
//! itself stays a pure function: build context hashes and public key files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use sha2::{Digest, Sha256};

use crate::config::{Diagnostic, LoadedConfig};

#[derive(Clone, Debug, Default)]
pub struct ExternalInputs {
    /// Build context directory (as written in stack.toml) → sha256 of its files.
    pub context_hashes: BTreeMap<String, String>,
    /// Files named in stack.toml (public keys, user data) → their contents.
    pub files: BTreeMap<String, String>,
}

/// Reads what lowering needs; problems name the field and the file.
pub fn gather(loaded: &LoadedConfig) -> Result<ExternalInputs, Vec<Diagnostic>> {
    let config = &loaded.config;
    let mut inputs = ExternalInputs::default();
    let mut problems = Vec::new();
    for (name, service) in &config.services {
        if let Some(context) = &service.build {
            if inputs.context_hashes.contains_key(context) {
                continue;
            }
            let directory = loaded.base_directory.join(context);
            match hash_context(&directory) {
                Ok(hash) => {
                    inputs.context_hashes.insert(context.clone(), hash);
                }
                Err(error) => problems.push(
                    Diagnostic::error(
                        "build-context",
                        format!(
                            "cannot read the build context of `{name}` at `{}`: {error}",
                            directory.display()
                        ),
                    )
                    .at(loaded.map.value(&format!("services.{name}.build")))
                    .expected("a directory with a Dockerfile, relative to stack.toml"),
                ),
            }
        }
    }
    let mut wanted: Vec<(String, String)> = Vec::new();
    for (name, key) in &config.ssh_keys {
        if let Some(file) = &key.public_key_file {
            wanted.push((file.clone(), format!("ssh_keys.{name}.public_key_file")));
        }
    }
    for (name, droplet) in &config.droplets {
        if let Some(file) = &droplet.user_data_file {
            wanted.push((file.clone(), format!("droplets.{name}.user_data_file")));
        }
    }
    for (name, file) in &config.files {
        if let Some(source) = &file.source {
            wanted.push((source.clone(), format!("files.{name}.source")));
        }
    }
    for (file, path) in wanted {
        let resolved = resolve_path(&loaded.base_directory, &file);
        match std::fs::read_to_string(&resolved) {
            Ok(text) => {
                inputs.files.insert(file, text);
            }
            Err(error) => problems.push(
                Diagnostic::error(
                    "unreadable-file",
                    format!("cannot read `{}`: {error}", resolved.display()),
                )
                .at(loaded.map.value(&path))
                .expected("a readable file"),
            ),
        }
    }
    if problems.is_empty() {
        Ok(inputs)
    } else {
        Err(problems)
    }
}

/// `~/x` → the home directory; relative paths → against the stack file's directory.
pub fn resolve_path(base_directory: &Path, file: &str) -> PathBuf {
    if let Some(rest) = file.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    base_directory.join(file)
}

/// sha256 over the sorted relative paths, modes and contents of every file in the
/// context that `.dockerignore` does not exclude. Unchanged context → unchanged hash →
/// no rebuild.
pub fn hash_context(directory: &Path) -> std::io::Result<String> {
    if !directory.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "not a directory",
        ));
    }
    let ignore = dockerignore(directory);
    let mut files = Vec::new();
    collect_files(directory, directory, &ignore, &mut files)?;
    files.sort();
    let mut hasher = Sha256::new();
    for relative in files {
        let full = directory.join(&relative);
        let contents = std::fs::read(&full)?;
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update((contents.len() as u64).to_le_bytes());
        hasher.update(&contents);
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

fn dockerignore(directory: &Path) -> Gitignore {
    let mut builder = GitignoreBuilder::new(directory);
    let file = directory.join(".dockerignore");
    if file.exists() {
        // A malformed pattern is skipped rather than failing the plan; Docker does the same.
        let _ = builder.add(file);
    }
    builder.build().unwrap_or_else(|_| Gitignore::empty())
}

fn collect_files(
    root: &Path,
    directory: &Path,
    ignore: &Gitignore,
    files: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(directory)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let path = entry.path();
        let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        let is_directory = entry.file_type()?.is_dir();
        if ignore
            .matched_path_or_any_parents(&relative, is_directory)
            .is_ignore()
        {
            continue;
        }
        if is_directory {
            collect_files(root, &path, ignore, files)?;
        } else {
            files.push(relative);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignored_files_do_not_change_the_hash() {
        let directory = tempfile::tempdir().unwrap();
        std::fs::write(directory.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(
            directory.path().join(".dockerignore"),
            "*.log\nnode_modules\n",
        )
        .unwrap();
        let before = hash_context(directory.path()).unwrap();
        std::fs::write(directory.path().join("debug.log"), "noise").unwrap();
        std::fs::create_dir(directory.path().join("node_modules")).unwrap();
        std::fs::write(directory.path().join("node_modules/x.js"), "x").unwrap();
        assert_eq!(hash_context(directory.path()).unwrap(), before);
        std::fs::write(directory.path().join("main.py"), "print(1)").unwrap();
        assert_ne!(hash_context(directory.path()).unwrap(), before);
    }
}
