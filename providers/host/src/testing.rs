//! A throw-away OpenSSH server for tests (feature `testing`).
//!
//! [`TestSshd::start`] generates a host key and a client key with `ssh-keygen` in a
//! temporary directory, writes an `sshd_config` that only knows those (no passwords,
//! no PAM, its own pid file, listening on `127.0.0.1` and a free port), and runs
//! `/usr/sbin/sshd -D` as a child process that is killed when the value is dropped.
//! It also writes a `known_hosts` file that trusts the host key, so tests choose
//! between "known", "unknown" (point [`SshOptions::known_hosts`] elsewhere) and
//! "changed" (write another key under the same name).
//!
//! Requirements (Debian): the `openssh-server` package, the privilege separation
//! directory `/run/sshd` (created here when missing, which needs root), and a user
//! allowed to log in with a key — tests run as root, so `PermitRootLogin
//! prohibit-password` is set.
//!
//! [`DropletHost`] (in `testing/droplet_host.rs`) goes further: a network namespace
//! with its own address, sshd on port 22 and dockerd, which a test deploys to as to a
//! droplet. [`SwarmHosts`] (in `testing/swarm_hosts.rs`) starts several that reach each
//! other, for a Docker Swarm.
//!
//! Other crates' tests use it through a dev-dependency:
//! `stackctl-host = { workspace = true, features = ["testing"] }`.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::SshOptions;

mod droplet_host;
mod swarm_hosts;

pub use droplet_host::{DropletHost, Teardown};
pub use swarm_hosts::SwarmHosts;

const SSHD: &str = "/usr/sbin/sshd";
const START_ATTEMPTS: usize = 5;
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running test sshd; stopped when dropped.
pub struct TestSshd {
    /// Always `127.0.0.1`.
    pub address: String,
    pub port: u16,
    /// The user the client key logs in as (the user running the tests).
    pub user: String,
    /// Private key accepted by the server.
    pub client_key: PathBuf,
    /// A `known_hosts` file with the server's key under `[127.0.0.1]:<port>`.
    pub known_hosts: PathBuf,
    /// The server's public host key file (`ssh-ed25519 AAAA… comment`).
    pub host_public_key: PathBuf,
    /// The server's host key fingerprint as `ssh-keygen -lf` prints it.
    pub host_key_fingerprint: String,
    directory: tempfile::TempDir,
    child: Child,
}

impl TestSshd {
    /// Starts an sshd with the default test configuration.
    pub fn start() -> Result<TestSshd, String> {
        TestSshd::start_with_config(&[])
    }

    /// Starts an sshd whose config also has `extra_lines` (for example
    /// `AllowStreamLocalForwarding no`); they come first, so they win over defaults.
    pub fn start_with_config(extra_lines: &[&str]) -> Result<TestSshd, String> {
        if !Path::new(SSHD).exists() {
            return Err(format!(
                "{SSHD} is missing: install the `openssh-server` package"
            ));
        }
        std::fs::create_dir_all("/run/sshd").map_err(|error| {
            format!("sshd needs the privilege separation directory /run/sshd, which cannot be created: {error}")
        })?;
        let directory = tempfile::Builder::new()
            .prefix("stackctl-sshd-")
            .tempdir()
            .map_err(|error| format!("cannot create a temporary directory: {error}"))?;
        let base = directory.path().to_path_buf();
        let host_key = base.join("ssh_host_ed25519_key");
        let client_key = base.join("client_ed25519_key");
        generate_key(&host_key, "stackctl-test-host")?;
        generate_key(&client_key, "stackctl-test-client")?;
        let authorized_keys = base.join("authorized_keys");
        copy(&with_extension(&client_key, "pub"), &authorized_keys)?;
        let host_public_key = with_extension(&host_key, "pub");
        let host_key_fingerprint = ssh_keygen_fingerprint(&host_public_key)?;
        let user = current_user();

        let mut last_failure = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let config = base.join("sshd_config");
            let log = base.join("sshd.log");
            std::fs::write(
                &config,
                sshd_config(extra_lines, &base, &host_key, &authorized_keys, port),
            )
            .map_err(|error| format!("cannot write {}: {error}", config.display()))?;
            let _ = std::fs::remove_file(&log);
            let mut child = Command::new(SSHD)
                .arg("-D")
                .arg("-f")
                .arg(&config)
                .arg("-E")
                .arg(&log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|error| format!("cannot start {SSHD}: {error}"))?;
            match wait_until_ready(&mut child, port) {
                Ok(()) => {
                    let known_hosts = base.join("known_hosts");
                    let public_key =
                        std::fs::read_to_string(&host_public_key).map_err(|error| {
                            format!("cannot read {}: {error}", host_public_key.display())
                        })?;
                    std::fs::write(
                        &known_hosts,
                        format!("[127.0.0.1]:{port} {}", public_key.trim_end()) + "\n",
                    )
                    .map_err(|error| format!("cannot write {}: {error}", known_hosts.display()))?;
                    return Ok(TestSshd {
                        address: "127.0.0.1".to_string(),
                        port,
                        user,
                        client_key,
                        known_hosts,
                        host_public_key,
                        host_key_fingerprint,
                        directory,
                        child,
                    });
                }
                Err(failure) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
                    last_failure = format!("{failure}; sshd log:\n{log_text}");
                    // Another process may have taken the port between our probe and
                    // sshd's bind: try another one. Anything else is fatal.
                    if !log_text.contains("Address already in use") {
                        break;
                    }
                }
            }
        }
        Err(format!("the test sshd did not start: {last_failure}"))
    }

    /// Options that reach this server as a known host with the client key.
    pub fn ssh_options(&self) -> SshOptions {
        SshOptions {
            address: self.address.clone(),
            port: self.port,
            user: self.user.clone(),
            identity_files: vec![self.client_key.clone()],
            known_hosts: Some(self.known_hosts.clone()),
            pinned_fingerprint: None,
            accept_new_host_key: false,
            connect_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            jump: None,
        }
    }

    /// Cuts every connection to this server, as a network failure or a crashed server
    /// would: kills (SIGKILL) the `sshd` processes serving them — this server's
    /// descendants, never the listener itself, which goes on accepting new connections.
    /// The commands those sessions ran are not signalled: they lose their pipes, as on a
    /// real host. Returns how many processes were killed.
    pub fn cut_connections(&self) -> usize {
        let listener = self.child.id();
        let mut parents: Vec<(u32, u32, String)> = Vec::new();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|name| name.parse().ok())
                else {
                    continue;
                };
                let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                    continue;
                };
                // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
                let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                    continue;
                };
                let command = stat[open + 1..close].to_string();
                let parent = stat[close + 1..]
                    .split_whitespace()
                    .nth(1)
                    .and_then(|field| field.parse().ok());
                if let Some(parent) = parent {
                    parents.push((pid, parent, command));
                }
            }
        }
        let mut descendants = vec![listener];
        let mut index = 0;
        while index < descendants.len() {
            let parent = descendants[index];
            descendants.extend(
                parents
                    .iter()
                    .filter(|(_, of, _)| *of == parent)
                    .map(|(pid, _, _)| *pid),
            );
            index += 1;
        }
        let servers: Vec<u32> = parents
            .iter()
            .filter(|(pid, _, command)| {
                *pid != listener && command == "sshd" && descendants.contains(pid)
            })
            .map(|(pid, _, _)| *pid)
            .collect();
        for pid in &servers {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
        }
        servers.len()
    }

    /// The temporary directory holding keys, config and log (removed on drop).
    pub fn directory(&self) -> &Path {
        self.directory.path()
    }

    /// The server's log so far, for test failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.directory.path().join("sshd.log")).unwrap_or_default()
    }

    /// Generates a fresh ed25519 key pair in the test directory and returns the path of
    /// its private half: a client key the server does not know, or a host key for a
    /// "changed key" test.
    pub fn generate_other_key(&self, name: &str) -> Result<PathBuf, String> {
        let path = self.directory.path().join(name);
        generate_key(&path, name)?;
        Ok(path)
    }
}

impl Drop for TestSshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sshd_config(
    extra_lines: &[&str],
    base: &Path,
    host_key: &Path,
    authorized_keys: &Path,
    port: u16,
) -> String {
    // sshd keeps the first value it reads for most keywords, so the caller's lines go
    // first.
    let mut config = String::new();
    for line in extra_lines {
        config.push_str(line);
        config.push('\n');
    }
    config.push_str(&format!(
        "ListenAddress 127.0.0.1:{port}\n\
         HostKey {host_key}\n\
         AuthorizedKeysFile {authorized_keys}\n\
         PidFile {pid_file}\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         StrictModes no\n\
         PermitRootLogin prohibit-password\n\
         UseDNS no\n\
         AllowTcpForwarding yes\n\
         AllowStreamLocalForwarding yes\n\
         LogLevel VERBOSE\n",
        host_key = host_key.display(),
        authorized_keys = authorized_keys.display(),
        pid_file = base.join("sshd.pid").display(),
    ));
    config
}

fn with_extension(path: &Path, extension: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".");
    name.push(extension);
    PathBuf::from(name)
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to).map(drop).map_err(|error| {
        format!(
            "cannot copy {} to {}: {error}",
            from.display(),
            to.display()
        )
    })
}

fn generate_key(path: &Path, comment: &str) -> Result<(), String> {
    let output = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("cannot run ssh-keygen (package `openssh-client`): {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ssh-keygen failed for {}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The second field of `ssh-keygen -lf`: `256 SHA256:… comment (ED25519)`.
pub fn ssh_keygen_fingerprint(public_key: &Path) -> Result<String, String> {
    let output = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(public_key)
        .output()
        .map_err(|error| format!("cannot run ssh-keygen: {error}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace()
        .nth(1)
        .filter(|field| field.starts_with("SHA256:"))
        .map(str::to_string)
        .ok_or_else(|| format!("unexpected `ssh-keygen -lf` output: {text}"))
}

fn current_user() -> String {
    if let Ok(user) = std::env::var("USER") {
        if !user.is_empty() {
            return user;
        }
    }
    Command::new("id")
        .arg("-un")
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .filter(|user| !user.is_empty())
        .unwrap_or_else(|| "root".to_string())
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|error| format!("cannot find a free port: {error}"))?;
    listener
        .local_addr()
        .map(|address| address.port())
        .map_err(|error| format!("cannot find a free port: {error}"))
}

/// Waits until the server answers with its SSH banner, or it exits, or time runs out.
fn wait_until_ready(child: &mut Child, port: u16) -> Result<(), String> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("sshd exited with {status}"));
        }
        if let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut banner = [0u8; 4];
            if stream.read_exact(&mut banner).is_ok() && &banner == b"SSH-" {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "sshd did not answer on port {port} within {READY_TIMEOUT:?}"
    ))
}
