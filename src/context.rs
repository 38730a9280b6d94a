//! Inputs lowering needs from the filesystem, gathered once up front so that lowering
//! itself stays a pure function: build context hashes and public key files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use stackctl_provider::build_context;

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
            let dockerfile = service.dockerfile.as_deref().unwrap_or("Dockerfile");
            match hash_context(&directory, dockerfile) {
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

/// sha256 over the sorted relative paths, permission bits and contents of every file the
/// build sends — the walk the docker provider packs into its tarball
/// ([`stackctl_provider::build_context::walk`], `.dockerignore` with Docker's rules). An
/// unchanged context → unchanged hash → no rebuild; any change to what ships → a rebuild.
pub fn hash_context(directory: &Path, dockerfile: &str) -> std::io::Result<String> {
    if !directory.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "not a directory",
        ));
    }
    let mut hasher = Sha256::new();
    for entry in build_context::walk(directory, dockerfile)? {
        if entry.is_directory {
            continue;
        }
        let contents = std::fs::read(&entry.path)?;
        hasher.update(entry.relative.as_bytes());
        hasher.update([0]);
        // Group and other write bits follow the umask of whoever checked the code out;
        // the rest (executable, set-id, owner write) is what changes an image.
        hasher.update((entry.mode & !0o022).to_le_bytes());
        hasher.update((contents.len() as u64).to_le_bytes());
        hasher.update(&contents);
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
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
        let before = hash_context(directory.path(), "Dockerfile").unwrap();
        std::fs::write(directory.path().join("debug.log"), "noise").unwrap();
        std::fs::create_dir(directory.path().join("node_modules")).unwrap();
        std::fs::write(directory.path().join("node_modules/x.js"), "x").unwrap();
        assert_eq!(
            hash_context(directory.path(), "Dockerfile").unwrap(),
            before
        );
        std::fs::write(directory.path().join("main.py"), "print(1)").unwrap();
        assert_ne!(
            hash_context(directory.path(), "Dockerfile").unwrap(),
            before
        );
    }

    #[test]
    fn a_shipped_file_below_a_root_pattern_changes_the_hash() {
        // `.dockerignore`'s `*.log` is anchored at the root (Docker's rule): `logs/app.log`
        // ships with the image, so editing it must rebuild. gitignore's rule would have
        // ignored it and left the image stale.
        let directory = tempfile::tempdir().unwrap();
        std::fs::write(directory.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(directory.path().join(".dockerignore"), "*.log\n").unwrap();
        std::fs::create_dir(directory.path().join("logs")).unwrap();
        std::fs::write(directory.path().join("logs/app.log"), "v1").unwrap();
        let before = hash_context(directory.path(), "Dockerfile").unwrap();
        std::fs::write(directory.path().join("logs/app.log"), "v2").unwrap();
        assert_ne!(
            hash_context(directory.path(), "Dockerfile").unwrap(),
            before
        );
    }

    #[test]
    fn a_mode_change_changes_the_hash() {
        use std::os::unix::fs::PermissionsExt;
        let directory = tempfile::tempdir().unwrap();
        std::fs::write(directory.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        let script = directory.path().join("entrypoint.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
        let before = hash_context(directory.path(), "Dockerfile").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_ne!(
            hash_context(directory.path(), "Dockerfile").unwrap(),
            before
        );
    }

    #[test]
    fn an_ignored_dockerfile_is_still_hashed() {
        let directory = tempfile::tempdir().unwrap();
        std::fs::write(directory.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(directory.path().join(".dockerignore"), "Dockerfile\n").unwrap();
        let before = hash_context(directory.path(), "Dockerfile").unwrap();
        std::fs::write(
            directory.path().join("Dockerfile"),
            "FROM scratch\nENV A=1\n",
        )
        .unwrap();
        assert_ne!(
            hash_context(directory.path(), "Dockerfile").unwrap(),
            before
        );
    }
}
