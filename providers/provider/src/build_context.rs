//! A Docker build context as Docker sends it: which files of a directory go to the
//! daemon, by `.dockerignore`'s rules (not gitignore's: a pattern is anchored at the
//! context's root, `*.log` matches `a.log` but not `sub/a.log`; `**` spans directories).
//!
//! One walk serves both sides of a build: the engine hashes its files (path, mode,
//! contents) to know whether an image must be rebuilt, and the docker provider packs the
//! same entries into the tarball it sends. If the two used different rules, an edit to a
//! shipped file could leave the hash — and the image — unchanged.

use std::path::{Path, PathBuf};

/// One entry of a build context, in the order it is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextEntry {
    /// `/`-separated, relative to the context: `sub/b.txt`.
    pub relative: String,
    pub path: PathBuf,
    pub is_directory: bool,
    /// The permission bits (`0o755`); part of what a build copies.
    pub mode: u32,
}

/// Every entry of `context` that a build sends, sorted: directories and files that
/// `.dockerignore` does not exclude, never the root's `.git`, and always `dockerfile`
/// (the build needs it, even when ignored). Symbolic links are sent as links, not
/// followed.
pub fn walk(context: &Path, dockerfile: &str) -> std::io::Result<Vec<ContextEntry>> {
    let ignore = match std::fs::read_to_string(context.join(".dockerignore")) {
        Ok(text) => IgnoreRules::parse(&text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => IgnoreRules::default(),
        Err(error) => return Err(error),
    };
    let mut entries = Vec::new();
    walk_directory(context, "", &ignore, dockerfile, &mut entries)?;
    Ok(entries)
}

fn walk_directory(
    directory: &Path,
    prefix: &str,
    ignore: &IgnoreRules,
    dockerfile: &str,
    found: &mut Vec<ContextEntry>,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(directory)?.collect::<Result<_, _>>()?;
    // Sorted, so equal contexts give equal hashes and tarballs.
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == ".git" && prefix.is_empty() {
            continue;
        }
        let path = entry.path();
        let relative = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let excluded = ignore.excludes(&relative) && relative != dockerfile;
        let metadata = std::fs::symlink_metadata(&path)?;
        let is_directory = metadata.is_dir();
        let mode = permission_bits(&metadata);
        if is_directory {
            if !excluded {
                found.push(ContextEntry {
                    relative: relative.clone(),
                    path: path.clone(),
                    is_directory: true,
                    mode,
                });
            }
            // A later `!pattern` may bring back something inside an excluded directory.
            if !excluded || ignore.has_exceptions() {
                walk_directory(&path, &relative, ignore, dockerfile, found)?;
            }
        } else if !excluded {
            found.push(ContextEntry {
                relative,
                path,
                is_directory: false,
                mode,
            });
        }
    }
    Ok(())
}

#[cfg(unix)]
fn permission_bits(metadata: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn permission_bits(metadata: &std::fs::Metadata) -> u32 {
    if metadata.permissions().readonly() {
        0o444
    } else {
        0o644
    }
}

/// The patterns of a `.dockerignore`: `*`, `?` and `**` globs over `/`-separated paths
/// relative to the context, `!` for exceptions, the last matching line wins, and a
/// pattern that matches a directory excludes everything below it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IgnoreRules {
    rules: Vec<(String, bool)>,
}

impl IgnoreRules {
    pub fn parse(text: &str) -> IgnoreRules {
        let rules = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| {
                let (pattern, exception) = match line.strip_prefix('!') {
                    Some(rest) => (rest.trim(), true),
                    None => (line, false),
                };
                let pattern = pattern
                    .trim_start_matches("./")
                    .trim_start_matches('/')
                    .trim_end_matches('/');
                (pattern.to_string(), exception)
            })
            .filter(|(pattern, _)| !pattern.is_empty())
            .collect();
        IgnoreRules { rules }
    }

    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|(_, exception)| *exception)
    }

    /// True when `path` (relative, `/`-separated) is left out of the context.
    pub fn excludes(&self, path: &str) -> bool {
        let mut excluded = false;
        for (pattern, exception) in &self.rules {
            let mut matched = glob_match(pattern, path);
            let mut ancestor = path;
            while !matched {
                match ancestor.rfind('/') {
                    Some(index) => {
                        ancestor = &ancestor[..index];
                        matched = glob_match(pattern, ancestor);
                    }
                    None => break,
                }
            }
            if matched {
                excluded = !exception;
            }
        }
        excluded
    }
}

/// Matches a glob against a path: `*` and `?` stay within one segment, `**` spans any.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    fn segments_match(pattern: &[&str], path: &[&str]) -> bool {
        match pattern.split_first() {
            None => path.is_empty(),
            Some((&"**", rest)) => (0..=path.len()).any(|skip| segments_match(rest, &path[skip..])),
            Some((first, rest)) => match path.split_first() {
                Some((segment, path_rest)) => {
                    segment_match(first.as_bytes(), segment.as_bytes())
                        && segments_match(rest, path_rest)
                }
                None => false,
            },
        }
    }
    fn segment_match(pattern: &[u8], text: &[u8]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some((b'*', rest)) => (0..=text.len()).any(|skip| segment_match(rest, &text[skip..])),
            Some((b'?', rest)) => !text.is_empty() && segment_match(rest, &text[1..]),
            Some((byte, rest)) => text.first() == Some(byte) && segment_match(rest, &text[1..]),
        }
    }
    let pattern: Vec<&str> = pattern.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    segments_match(&pattern, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(files: &[(&str, &str)]) -> tempfile_free::Directory {
        let directory = tempfile_free::Directory::new();
        for (name, contents) in files {
            let path = directory.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, contents).unwrap();
        }
        directory
    }

    fn files(entries: &[ContextEntry]) -> Vec<&str> {
        entries
            .iter()
            .filter(|entry| !entry.is_directory)
            .map(|entry| entry.relative.as_str())
            .collect()
    }

    #[test]
    fn a_root_pattern_does_not_reach_into_directories_as_gitignore_would() {
        // Docker anchors `*.log` at the context's root; gitignore would match any depth.
        let directory = context(&[
            ("Dockerfile", "FROM scratch\n"),
            (".dockerignore", "*.log\n"),
            ("a.log", "root log"),
            ("sub/b.log", "shipped"),
        ]);
        let entries = walk(directory.path(), "Dockerfile").unwrap();
        assert_eq!(
            files(&entries),
            vec![".dockerignore", "Dockerfile", "sub/b.log"]
        );
    }

    #[test]
    fn double_star_exceptions_and_the_dockerfile() {
        let directory = context(&[
            ("Dockerfile", "FROM scratch\n"),
            (
                ".dockerignore",
                "**/*.log\nsub\n!sub/keep.txt\nDockerfile\n.env\n",
            ),
            (".env", "SECRET=1"),
            ("deep/x/c.log", "c"),
            ("sub/keep.txt", "kept"),
            ("sub/drop.txt", "dropped"),
            (".git/HEAD", "ref"),
        ]);
        let entries = walk(directory.path(), "Dockerfile").unwrap();
        assert_eq!(
            files(&entries),
            vec![".dockerignore", "Dockerfile", "sub/keep.txt"]
        );
    }

    #[test]
    fn modes_are_read() {
        let directory = context(&[("Dockerfile", "FROM scratch\n"), ("run.sh", "#!/bin/sh\n")]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let script = directory.path().join("run.sh");
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
            let entries = walk(directory.path(), "Dockerfile").unwrap();
            let script = entries
                .iter()
                .find(|entry| entry.relative == "run.sh")
                .unwrap();
            assert_eq!(script.mode, 0o755);
        }
    }

    #[test]
    fn dockerignore_globs() {
        assert!(glob_match("*.log", "a.log"));
        assert!(!glob_match("*.log", "dir/a.log"));
        assert!(glob_match("**/*.log", "dir/deep/a.log"));
        assert!(glob_match("**/*.log", "a.log"));
        assert!(glob_match("a?c", "abc"));
    }

    /// A temporary directory without a dependency (this crate has none for tests).
    mod tempfile_free {
        pub struct Directory(std::path::PathBuf);

        impl Directory {
            pub fn new() -> Directory {
                static NEXT: std::sync::atomic::AtomicUsize =
                    std::sync::atomic::AtomicUsize::new(0);
                let number = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let path = std::env::temp_dir().join(format!(
                    "stackctl-build-context-{}-{number}",
                    std::process::id()
                ));
                let _ = std::fs::remove_dir_all(&path);
                std::fs::create_dir_all(&path).unwrap();
                Directory(path)
            }

            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }

        impl Drop for Directory {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}
