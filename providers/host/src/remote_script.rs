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
/// the moment before `chmod`. With `owner` (uid, gid), the temporary file is given to
/// that owner before the rename, so the file never appears with another owner.
pub fn write_file_script(
    path: &str,
    mode: u32,
    owner: Option<(u32, u32)>,
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
         {chown}\
         mv -f -- \"$tmp\" {path}\n",
        chown = owner
            .map(|(uid, gid)| format!("chown {uid}:{gid} -- \"$tmp\"\n"))
            .unwrap_or_default(),
        directories = directories.join(" "),
        mode = mode & 0o7777,
        path = quote(path)?,
    ))
}

/// Where [`hold_lock_script`] keeps the holder's details: a file beside the lock.
pub fn holder_path(lock: &str) -> String {
    format!("{lock}.holder")
}

/// Checks that the host has `flock` (util-linux or busybox) before a lock script uses it.
const FLOCK_REQUIRED: &str = "command -v flock >/dev/null 2>&1 || \
{ echo 'the host has no `flock` program (Debian and Ubuntu ship it in util-linux)' >&2; exit 1; }\n";

/// Script that takes the kernel lock (`flock`) on the file `path` and then **holds it
/// for as long as its stdin stays open**, so the lock lives exactly as long as the SSH
/// channel that runs it: when stackctl ends, however it ends, sshd closes the channel's
/// pipes, `read` sees end of file, the script exits and the kernel drops the lock.
///
/// Output, after the begin marker of `nonce`:
/// - held by another process: the holder's details, exit [`LOCK_HELD_STATUS`];
/// - taken: `<nonce> stale` and the details a holder that is gone left behind (if any),
///   then `<nonce> locked`; it then waits. A line `release` on stdin removes the
///   details file (a clean unlock); end of file without it leaves the details, so the
///   next run can say whose run it took over.
///
/// With `record`, that file is read once the lock is taken, in the same command, and
/// printed before `<nonce> locked` as `<nonce> record`, its contents, `\n<nonce>
/// record-end` (nothing when it does not exist): the host's record of which state
/// lineage deployed the stack is read under the lock with no second command.
///
/// With `reads`, [`read_and_list_script`] of them runs once the lock is taken, printed
/// before `<nonce> locked` after a line `<nonce> reads`: a refresh's reads of the host's
/// files and the host lock of the apply that follows it, in one command.
pub fn hold_lock_script(
    path: &str,
    details: &str,
    record: Option<&str>,
    reads: Option<ReadsUnderLock>,
    nonce: &str,
) -> Result<String, QuoteError> {
    let reads = match reads {
        Some((paths, directories, reads_nonce)) => format!(
            "printf '%s\\n' '{nonce} reads'\n{}",
            read_and_list_script(paths, directories, reads_nonce)?
        ),
        None => String::new(),
    };
    let read_record = match record {
        Some(record) => {
            let record = quote(record)?;
            format!(
                "if [ -e {record} ]; then printf '%s\\n' '{nonce} record'; cat -- {record}; printf '\\n%s\\n' '{nonce} record-end'; fi\n"
            )
        }
        None => String::new(),
    };
    let parent = match parent_directory(path) {
        Some(parent) => format!("mkdir -p -- {} || exit 1\n", quote(parent)?),
        None => String::new(),
    };
    let lock = quote(path)?;
    let holder = quote(&holder_path(path))?;
    let begin = begin_marker_command(nonce);
    Ok(format!(
        "{FLOCK_REQUIRED}\
         {parent}\
         exec 9>>{lock} || exit 1\n\
         flock -n 9; status=$?\n\
         if [ \"$status\" -ne 0 ]; then\n\
         \x20 [ \"$status\" -eq 1 ] || {{ echo \"flock failed with status $status\" >&2; exit 1; }}\n\
         \x20 {begin}\
         \x20 cat -- {holder} 2>/dev/null; exit {LOCK_HELD_STATUS}\n\
         fi\n\
         {begin}\
         if [ -s {holder} ]; then printf '%s\\n' '{nonce} stale'; cat -- {holder}; printf '\\n'; fi\n\
         tmp={holder}.$$\n\
         printf '%s' {details} > \"$tmp\" && mv -f -- \"$tmp\" {holder} || exit 1\n\
         {read_record}\
         {reads}\
         printf '%s\\n' '{nonce} locked'\n\
         IFS= read -r request || request=\n\
         if [ \"$request\" = release ]; then rm -f -- {holder}; fi\n\
         exit 0\n",
        details = quote(details)?,
    ))
}

/// The files and listings [`hold_lock_script`] reads under the lock: paths, directories,
/// and the nonce of their own frames ([`read_and_list_script`]).
pub type ReadsUnderLock<'a> = (&'a [String], &'a [String], &'a str);

/// What [`hold_lock_script`] printed so far, once it is decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockOutput {
    /// The lock is ours; with the details of a holder that is gone, if it left any, and
    /// the record read under the lock (see [`hold_lock_script`]), if it exists.
    Taken {
        previous_holder: Option<String>,
        record: Option<Vec<u8>>,
        /// What [`hold_lock_script`] printed of its reads (for
        /// [`parse_read_and_list`] with the reads' nonce).
        reads: Option<Vec<u8>>,
    },
    /// Not decided yet: read more.
    Undecided,
}

/// Reads the output of [`hold_lock_script`] while it runs: `Taken` once the `locked`
/// line arrived.
pub fn parse_lock_output(output: &[u8], nonce: &str) -> LockOutput {
    let Ok(after) = after_begin_marker(output, nonce) else {
        return LockOutput::Undecided;
    };
    let locked = format!("{nonce} locked\n");
    let Some(end) = find(after, locked.as_bytes()) else {
        return LockOutput::Undecided;
    };
    let mut before = &after[..end];
    let reads_begin = format!("{nonce} reads\n");
    let mut reads = None;
    if let Some(start) = find(before, reads_begin.as_bytes()) {
        reads = Some(before[start + reads_begin.len()..].to_vec());
        before = &before[..start];
    }
    let record_begin = format!("{nonce} record\n");
    let record_end = format!("\n{nonce} record-end\n");
    let mut record = None;
    if let Some(start) = find(before, record_begin.as_bytes()) {
        let contents = &before[start + record_begin.len()..];
        let Some(length) = find(contents, record_end.as_bytes()) else {
            return LockOutput::Undecided;
        };
        record = Some(contents[..length].to_vec());
        before = &before[..start];
    }
    let stale = format!("{nonce} stale\n");
    let previous_holder = before
        .strip_prefix(stale.as_bytes())
        .map(|details| String::from_utf8_lossy(details).trim().to_string())
        .filter(|details| !details.is_empty());
    LockOutput::Taken {
        previous_holder,
        record,
        reads,
    }
}

/// Script that clears the details a holder that is gone left beside the lock `path`,
/// but only if no live process holds the lock (`flock -n` succeeds). Prints, after the
/// begin marker, the details it removed; exits [`LOCK_HELD_STATUS`] with the live
/// holder's details when the lock is held.
pub fn clear_stale_lock_script(path: &str, nonce: &str) -> Result<String, QuoteError> {
    let lock = quote(path)?;
    let holder = quote(&holder_path(path))?;
    let begin = begin_marker_command(nonce);
    Ok(format!(
        "{begin}\
         [ -e {lock} ] || exit 0\n\
         {FLOCK_REQUIRED}\
         exec 9>>{lock} || exit 1\n\
         flock -n 9; status=$?\n\
         if [ \"$status\" -ne 0 ]; then\n\
         \x20 [ \"$status\" -eq 1 ] || {{ echo \"flock failed with status $status\" >&2; exit 1; }}\n\
         \x20 cat -- {holder} 2>/dev/null; exit {LOCK_HELD_STATUS}\n\
         fi\n\
         cat -- {holder} 2>/dev/null\n\
         rm -f -- {holder}\n"
    ))
}

/// Script that removes one file; a missing file is not an error.
pub fn remove_file_script(path: &str) -> Result<String, QuoteError> {
    Ok(format!("rm -f -- {}\n", quote(path)?))
}

/// Lists the files directly in `directory` (not subdirectories), each name followed by a
/// NUL byte; nothing when the directory does not exist.
pub fn list_files_script(directory: &str, nonce: &str) -> Result<String, QuoteError> {
    let mut script = begin_marker_command(nonce);
    script.push_str(&listing_commands(directory)?);
    Ok(script)
}

/// Commands (run in a subshell, so a missing directory ends only them) that print the
/// names of the files directly in `directory`, each followed by a NUL byte.
fn listing_commands(directory: &str) -> Result<String, QuoteError> {
    Ok(format!(
        "(cd -- {} 2>/dev/null || exit 0\n\
         for f in * .[!.]* ..?*; do\n\
         if [ -L \"$f\" ] || {{ [ -e \"$f\" ] && [ ! -d \"$f\" ]; }}; then printf '%s\\0' \"$f\"; fi\n\
         done)\n",
        quote(directory)?
    ))
}

/// One script for [`read_files_script`]'s files and, after them, the listing of each of
/// `directories` as one more frame (its names NUL-terminated; an absent directory lists
/// nothing): a refresh reads files and looks into directories in one command.
pub fn read_and_list_script(
    paths: &[String],
    directories: &[String],
    nonce: &str,
) -> Result<String, QuoteError> {
    let mut script = read_files_script(paths, nonce)?;
    for (offset, directory) in directories.iter().enumerate() {
        let index = paths.len() + offset;
        script.push_str(&listing_commands(directory)?);
        script.push_str(&format!("printf '\\n%s %s\\n' '{nonce} {index}' ok\n"));
    }
    Ok(script)
}

/// Splits the output of [`read_and_list_script`]: the files of `paths_count` paths, then
/// the sorted names listed in each of `directories_count` directories.
pub fn parse_read_and_list(
    output: &[u8],
    paths_count: usize,
    directories_count: usize,
    nonce: &str,
) -> Result<(Vec<FileRead>, Vec<Vec<String>>), String> {
    let mut files = parse_read_files(output, paths_count + directories_count, nonce)?;
    let listings = files
        .split_off(paths_count)
        .into_iter()
        .map(|frame| match frame {
            FileRead::Contents(listed) => Ok(names_of(&listed)),
            other => Err(format!("unexpected listing frame {other:?}")),
        })
        .collect::<Result<_, _>>()?;
    Ok((files, listings))
}

/// NUL-terminated names → sorted names.
fn names_of(listed: &[u8]) -> Vec<String> {
    let mut names: Vec<String> = listed
        .split(|byte| *byte == 0)
        .filter(|name| !name.is_empty())
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect();
    names.sort();
    names
}

/// The sorted names [`list_files_script`] printed.
pub fn parse_list_files(output: &[u8], nonce: &str) -> Result<Vec<String>, String> {
    Ok(names_of(after_begin_marker(output, nonce)?))
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
    fn one_script_reads_files_and_lists_directories() {
        let directory = tempfile::tempdir().unwrap();
        let base = directory.path().to_str().unwrap();
        std::fs::write(format!("{base}/present"), b"contents\n").unwrap();
        std::fs::create_dir(format!("{base}/dynamic")).unwrap();
        std::fs::write(format!("{base}/dynamic/route-web.yml"), b"").unwrap();
        std::fs::write(format!("{base}/dynamic/by hand.yml"), b"").unwrap();
        std::fs::create_dir(format!("{base}/dynamic/subdirectory")).unwrap();
        let paths = [format!("{base}/present"), format!("{base}/missing")];
        let directories = [
            format!("{base}/dynamic"),
            format!("{base}/no-such-directory"),
        ];
        let nonce = nonce();
        let (status, stdout, _) = run(
            &read_and_list_script(&paths, &directories, &nonce).unwrap(),
            b"",
        );
        assert_eq!(status, 0);
        let (files, listings) = parse_read_and_list(&stdout, 2, 2, &nonce).unwrap();
        assert_eq!(
            files,
            vec![
                FileRead::Contents(b"contents\n".to_vec()),
                FileRead::Missing
            ]
        );
        assert_eq!(
            listings,
            vec![
                vec!["by hand.yml".to_string(), "route-web.yml".to_string()],
                Vec::new()
            ]
        );
    }

    /// Runs the lock script reading `record` until it took the lock, then lets it go.
    fn take_reading(path: &str, record: &str) -> LockOutput {
        take_reading_with(path, record, None)
    }

    /// [`take_reading`], with `reads` made under the lock.
    fn take_reading_with(path: &str, record: &str, reads: Option<ReadsUnderLock>) -> LockOutput {
        use std::io::Read;
        let nonce = nonce();
        let script = hold_lock_script(path, "details", Some(record), reads, &nonce).unwrap();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(sh_command(&script, None).unwrap())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (mut output, mut buffer) = (Vec::new(), [0u8; 4096]);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut decided = LockOutput::Undecided;
        while std::time::Instant::now() < deadline {
            decided = parse_lock_output(&output, &nonce);
            if decided != LockOutput::Undecided {
                break;
            }
            match stdout.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(read) => output.extend_from_slice(&buffer[..read]),
            }
        }
        child.stdin.take().unwrap().write_all(b"release\n").unwrap();
        child.wait().unwrap();
        decided
    }

    #[test]
    fn the_lock_script_reads_a_record_under_the_lock_in_the_same_command() {
        let directory = tempfile::tempdir().unwrap();
        let base = directory.path().to_str().unwrap();
        let lock = format!("{base}/locks/shop.lock");
        let record = format!("{base}/locks/shop.lineage");
        assert_eq!(
            take_reading(&lock, &record),
            LockOutput::Taken {
                previous_holder: None,
                record: None,
                reads: None,
            }
        );
        std::fs::write(&record, b"lineage-1\n").unwrap();
        assert_eq!(
            take_reading(&lock, &record),
            LockOutput::Taken {
                previous_holder: None,
                record: Some(b"lineage-1\n".to_vec()),
                reads: None,
            }
        );
    }

    #[test]
    fn the_lock_script_makes_a_refreshs_reads_under_the_lock_in_the_same_command() {
        let directory = tempfile::tempdir().unwrap();
        let base = directory.path().to_str().unwrap();
        let lock = format!("{base}/locks/shop.lock");
        let record = format!("{base}/locks/shop.lineage");
        std::fs::create_dir_all(format!("{base}/locks")).unwrap();
        std::fs::write(&record, b"lineage-1\n").unwrap();
        std::fs::create_dir(format!("{base}/dynamic")).unwrap();
        std::fs::write(format!("{base}/dynamic/route.yml"), b"x").unwrap();
        // A file whose contents look like the lock's own lines stays contents.
        std::fs::write(format!("{base}/odd"), b"n reads\nn locked\n").unwrap();
        let paths = vec![format!("{base}/odd"), format!("{base}/missing")];
        let directories = vec![format!("{base}/dynamic")];
        let reads_nonce = nonce();
        let LockOutput::Taken {
            previous_holder,
            record,
            reads: Some(reads),
        } = take_reading_with(&lock, &record, Some((&paths, &directories, &reads_nonce)))
        else {
            panic!("the lock was not taken with its reads");
        };
        assert_eq!(previous_holder, None);
        assert_eq!(record, Some(b"lineage-1\n".to_vec()));
        let (files, listings) = parse_read_and_list(&reads, 2, 1, &reads_nonce).unwrap();
        assert_eq!(
            files,
            vec![
                FileRead::Contents(b"n reads\nn locked\n".to_vec()),
                FileRead::Missing
            ]
        );
        assert_eq!(listings, vec![vec!["route.yml".to_string()]]);
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
    fn write_file_gives_the_temporary_to_its_owner_before_the_rename() {
        let script =
            write_file_script("/srv/key", 0o600, Some((999, 998)), "/srv/.tmp", "n").unwrap();
        let chown = script.find("chown 999:998 -- \"$tmp\"\n").expect("chown");
        assert!(chown < script.find("mv -f").unwrap(), "{script}");
        let plain = write_file_script("/srv/key", 0o600, None, "/srv/.tmp", "n").unwrap();
        assert!(!plain.contains("chown"), "{plain}");
    }

    #[test]
    fn write_file_renames_a_private_temporary_into_place_with_the_mode() {
        use std::os::unix::fs::PermissionsExt;
        let directory = tempfile::tempdir().unwrap();
        let base = directory.path().to_str().unwrap();
        let path = format!("{base}/new/dir/it's $(x).yml");
        let temp_dir = format!("{base}/tmp");
        let script = write_file_script(&path, 0o640, None, &temp_dir, &nonce()).unwrap();
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
        let script = write_file_script(
            &format!("{base}/file/child"),
            0o644,
            None,
            &temp_dir,
            &nonce(),
        )
        .unwrap();
        let (status, _, stderr) = run(&script, b"x");
        assert_ne!(status, 0);
        assert!(!stderr.is_empty());
        let leftovers = std::fs::read_dir(&temp_dir)
            .map(|entries| entries.count())
            .unwrap_or(0);
        assert_eq!(leftovers, 0);
    }

    /// Starts [`hold_lock_script`] as a child process with its stdin open, and reads
    /// until it decided or exited (bounded: 10 s). Returns the child, the holder named
    /// (taken: a gone holder's details; refused: the live holder's) and the exit status
    /// when it exited.
    fn start_holding(
        path: &str,
        details: &str,
    ) -> (std::process::Child, Option<String>, Option<i32>) {
        use std::io::Read;
        let nonce = nonce();
        let command = sh_command(
            &hold_lock_script(path, details, None, None, &nonce).unwrap(),
            None,
        )
        .unwrap();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut output = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut buffer = [0u8; 4096];
        while std::time::Instant::now() < deadline {
            if let LockOutput::Taken {
                previous_holder, ..
            } = parse_lock_output(&output, &nonce)
            {
                return (child, previous_holder, None);
            }
            match stdout.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(read) => output.extend_from_slice(&buffer[..read]),
            }
        }
        let status = child.wait().unwrap().code().unwrap_or(-1);
        let held = after_begin_marker(&output, &nonce)
            .map(|details| String::from_utf8_lossy(details).into_owned())
            .ok();
        (child, held, Some(status))
    }

    #[test]
    fn a_lock_is_held_while_its_stdin_is_open_and_a_gone_holder_is_taken_over() {
        let directory = tempfile::tempdir().unwrap();
        let path = format!("{}/locks/shop.lock", directory.path().to_str().unwrap());

        let (mut alice, previous, exited) = start_holding(&path, "alice@laptop pid 42");
        assert_eq!((previous, exited), (None, None));
        // A second taker is refused, naming the holder.
        let (_, holder, exited) = start_holding(&path, "bob@desk pid 7");
        assert_eq!(exited, Some(LOCK_HELD_STATUS as i32));
        assert_eq!(holder.as_deref(), Some("alice@laptop pid 42"));
        // So is clearing it: a live run holds it.
        let (status, stdout, _) = run(&clear_stale_lock_script(&path, "n").unwrap(), b"");
        assert_eq!(status as u32, LOCK_HELD_STATUS);
        assert_eq!(
            after_begin_marker(&stdout, "n").unwrap(),
            b"alice@laptop pid 42"
        );

        // Alice's connection ends without a word (kill -9 of stackctl): stdin closes, the
        // lock is free, and the next taker is told whose lock it took over.
        drop(alice.stdin.take());
        assert!(alice.wait().unwrap().success());
        let (mut bob, previous, exited) = start_holding(&path, "bob@desk pid 7");
        assert_eq!(exited, None);
        assert_eq!(previous.as_deref(), Some("alice@laptop pid 42"));

        // A clean release removes the details: the next run finds nothing stale.
        bob.stdin.take().unwrap().write_all(b"release\n").unwrap();
        assert!(bob.wait().unwrap().success());
        assert!(!std::path::Path::new(&holder_path(&path)).exists());
        let (mut carol, previous, _) = start_holding(&path, "carol");
        assert_eq!(previous, None);
        drop(carol.stdin.take());
        carol.wait().unwrap();

        // Carol left her details; clearing them needs no live holder and says whose they were.
        let (status, stdout, _) = run(&clear_stale_lock_script(&path, "n").unwrap(), b"");
        assert_eq!(status, 0);
        assert_eq!(after_begin_marker(&stdout, "n").unwrap(), b"carol");
        assert!(!std::path::Path::new(&holder_path(&path)).exists());
    }

    #[test]
    fn lock_failures_other_than_held_are_errors() {
        let directory = tempfile::tempdir().unwrap();
        let base = directory.path().to_str().unwrap();
        std::fs::write(format!("{base}/file"), b"").unwrap();
        let (status, _, stderr) = run(
            &hold_lock_script(&format!("{base}/file/lock"), "x", None, None, "n").unwrap(),
            b"",
        );
        assert_eq!(status, 1);
        assert!(!stderr.is_empty());
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
        assert!(write_file_script("a\0b", 0o644, None, "/tmp", "n").is_err());
        assert!(hold_lock_script("a\0b", "x", None, None, "n").is_err());
    }
}
