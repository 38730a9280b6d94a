//! A droplet-shaped host for tests: a machine of its own, made from this machine's kernel.
//!
//! To stackctl a droplet is an IPv4 address where `root` logs in over SSH on port 22,
//! a Docker daemon at `/var/run/docker.sock` on that host, and published ports that
//! clients reach through the same address with their own source address (iptables DNAT,
//! no proxy). [`DropletHost::start`] builds exactly that, so a test deploys to it with
//! `[target] droplet = "web-1"` and no override of the port, the user or the socket:
//!
//! - a **network namespace** `stackctl-<name>` joined to this one by a veth pair in
//!   `10.210.<index>.0/29`: `eth0` inside holds `.2` (the droplet's public IPv4), this
//!   side holds `.1` (the operator: the address tests put in allowlists) and `.3` (a
//!   second client, outside any allowlist). Loopback is up, the default route goes back
//!   through `.1`.
//! - a **mount and UTS namespace** shared by the droplet's daemons: a private tmpfs on
//!   `/run` (so `/var/run/docker.sock`, Docker's exec-root and pid file, and sshd's
//!   `/run/sshd` are the droplet's own and this machine's Docker socket is out of
//!   sight), the host's own directories bound over `/var/lib/docker` and `/etc/docker`
//!   (its own images and engine identity), and the hostname `<name>`. Everything a
//!   container mounts lives in this namespace, so when its last process exits the
//!   kernel drops every mount: none can leak into this machine's mount table. Outside
//!   those paths the droplet shares this machine's files (a stack's `[target] root`
//!   is best a test directory).
//! - its own **sshd** on `<address>:22`, run as root with its own host key and an
//!   authorized key made for the test (`PermitRootLogin prohibit-password`, as on a
//!   droplet), so stackctl's SSH transport forwards `/var/run/docker.sock` (or runs
//!   `docker system dial-stdio`) exactly as it would on a real droplet.
//! - its own **dockerd** with Docker's default paths inside the mount namespace, a
//!   second socket under the host's directory for the test's own inspections
//!   ([`DropletHost::docker_host`]), its own bridge range `10.211.<index>.1/24`,
//!   iptables on and `--userland-proxy=false`, and its containers under the cgroup
//!   `stackctl-<name>` so every process they run can be found and counted.
//!
//! # Nothing left behind
//!
//! Every process is stopped by PID on drop (or [`DropletHost::stop`], which also reports
//! what it could not remove): dockerd gets SIGTERM (it stops its containers and its
//! containerd), a bounded wait, then SIGKILL; then sshd; then anything still in the
//! namespaces or the cgroup is killed. The network namespace (and with it the veth
//! pair), the cgroups and the directory are removed, and the teardown checks each is
//! gone. Every wait is bounded in count and time.
//!
//! Processes are found by namespace and cgroup, never by name: the network namespace
//! is held by its name under `/run/netns`, and the mount namespace by an open handle,
//! because the kernel hands a dead namespace's id to the next new one at once (a scan by
//! a stale id once killed another test's fresh sshd).
//!
//! A run that crashed leaves its record (`host.record`: the owner's and the daemons'
//! PIDs) in the host's directory, and its namespace under its name; the next start under
//! the same name tears that down first (dockerd by SIGTERM, then every process in the
//! namespace or the cgroup), unless the owner is still alive, which is an error naming it.
//! Names and indexes must be unique among hosts running at once (like ports); an
//! index whose range some other interface holds is refused.
//!
//! Requirements: root, `iproute2` (`ip`), `util-linux` (`nsenter`, `unshare`, `mount`),
//! `iptables`, `docker.io` (`dockerd`, `containerd`, the `docker` CLI) and
//! `openssh-server` (`/usr/sbin/sshd`).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{copy, generate_key, ssh_keygen_fingerprint, with_extension};
use crate::SshOptions;

const SSHD: &str = "/usr/sbin/sshd";
const SSHD_READY_TIMEOUT: Duration = Duration::from_secs(15);
const DOCKERD_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// dockerd stops its containers (`--shutdown-timeout`) and containerd before exiting.
const DOCKERD_STOP_TIMEOUT: Duration = Duration::from_secs(30);
const SSHD_STOP_TIMEOUT: Duration = Duration::from_secs(5);
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
const IMAGE_LOAD_TIMEOUT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(100);

/// Run by `sh` in the new mount and UTS namespaces, before it becomes sshd: drops the
/// copies of this machine's Docker and namespace mounts the new namespace started with,
/// gives the droplet its own `/run`, its own Docker data and configuration (so its
/// daemon has its own identity), and its own hostname.
const MOUNT_SCRIPT: &str = r#"set -e
data="$1"
configuration="$2"
hostname "$3"
shift 3
awk '$5 ~ "^/(run|var/lib/docker)/" { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r path; do umount -l "$path" 2>/dev/null || true; done
mount -t tmpfs -o mode=0755,size=64m stackctl-droplet-run /run
mkdir -m 0755 /run/sshd /run/lock
mkdir -p /var/lib/docker /etc/docker
mount --bind "$data" /var/lib/docker
mount --bind "$configuration" /etc/docker
exec "$@"
"#;

/// A running droplet-shaped host; torn down when dropped.
pub struct DropletHost {
    /// The name given to [`DropletHost::start`].
    pub name: String,
    /// The network namespace, `stackctl-<name>`.
    pub namespace: String,
    /// The droplet's public IPv4 (`eth0` in the namespace): hand it to the emulator.
    pub address: Ipv4Addr,
    /// This machine's address on the link: the source of ordinary requests, the one to
    /// put in allowlists.
    pub operator_address: Ipv4Addr,
    /// A second address of this machine on the link, outside any allowlist.
    pub outside_address: Ipv4Addr,
    /// `root`, as on a droplet.
    pub user: String,
    /// The private key sshd accepts for root.
    pub client_key: PathBuf,
    /// A `known_hosts` file trusting the host key under the plain address (port 22).
    pub known_hosts: PathBuf,
    /// The host key's fingerprint as `ssh-keygen -lf` prints it.
    pub host_key_fingerprint: String,
    /// The droplet daemon's second socket, reachable from this machine.
    pub docker_socket: PathBuf,
    /// How long [`DropletHost::start`] took (cleaning a crashed run's leftovers included).
    pub startup: Duration,
    root_link: String,
    index: u8,
    cgroup: String,
    directory: PathBuf,
    record: Record,
    mount_namespace: Option<MountNamespace>,
    sshd: Option<Child>,
    dockerd: Option<Child>,
    stopped: bool,
}

/// What a teardown did: how long it took, and every trace of the host it found still
/// there afterwards (empty when nothing is left).
#[derive(Debug)]
pub struct Teardown {
    pub duration: Duration,
    pub leftovers: Vec<String>,
}

/// What a host's directory records about it, so a later start can tear down the
/// leftovers of a run that crashed.
#[derive(Debug, Default, Clone)]
struct Record {
    owner: Option<u32>,
    sshd: Option<u32>,
    dockerd: Option<u32>,
}

/// The droplet's mount namespace, held open: the kernel reuses a dead namespace's id at
/// once, so only while this handle keeps it alive does its id name the droplet's
/// processes and no one else's.
struct MountNamespace {
    /// `mnt:[4026532…]`, as `/proc/<pid>/ns/mnt` reads.
    id: String,
    _handle: std::fs::File,
}

impl DropletHost {
    /// Starts the host `name` (`[a-z0-9-]`, at most 24 characters) on the link
    /// `10.210.<index>.0/29` (`index` from 1 to 254). Both must be unique among hosts
    /// running at once. Leftovers of a crashed run under the same name are removed first.
    pub fn start(name: &str, index: u8) -> Result<DropletHost, String> {
        let started = Instant::now();
        validate(name, index)?;
        let directory = std::env::temp_dir().join(format!("stackctl-droplet-{name}"));
        let mut host = DropletHost {
            name: name.to_string(),
            namespace: format!("stackctl-{name}"),
            address: Ipv4Addr::new(10, 210, index, 2),
            operator_address: Ipv4Addr::new(10, 210, index, 1),
            outside_address: Ipv4Addr::new(10, 210, index, 3),
            user: "root".to_string(),
            client_key: directory.join("client_ed25519_key"),
            known_hosts: directory.join("known_hosts"),
            host_key_fingerprint: String::new(),
            docker_socket: directory.join("docker.sock"),
            startup: Duration::ZERO,
            root_link: format!("sdh{index}"),
            index,
            cgroup: format!("stackctl-{name}"),
            directory,
            record: Record::default(),
            mount_namespace: None,
            sshd: None,
            dockerd: None,
            // Nothing of ours exists yet: a failure before the leftovers are gone must
            // not tear down a host another process still owns.
            stopped: true,
        };
        host.remove_leftovers()?;
        host.stopped = false;
        // From here on, a failed step drops `host`, which tears down what was made.
        let phase = Instant::now();
        host.prepare_directory(index)?;
        host.create_network()?;
        let network = phase.elapsed();
        let phase = Instant::now();
        host.start_sshd()?;
        let sshd = phase.elapsed();
        let phase = Instant::now();
        host.start_dockerd(index)?;
        let dockerd = phase.elapsed();
        host.startup = started.elapsed();
        eprintln!(
            "droplet host {name}: {} up in {:.2?} (keys and network {network:.2?}, sshd {sshd:.2?}, dockerd {dockerd:.2?})",
            host.address, host.startup
        );
        Ok(host)
    }

    /// Options that reach the host's sshd as root, trusting its key.
    pub fn ssh_options(&self) -> SshOptions {
        SshOptions {
            identity_files: vec![self.client_key.clone()],
            known_hosts: Some(self.known_hosts.clone()),
            connect_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            ..SshOptions::new(self.address.to_string(), 22, self.user.clone())
        }
    }

    /// `unix:///…/docker.sock`: the droplet's daemon, for `docker -H`.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.docker_socket.display())
    }

    /// Runs the `docker` CLI against the droplet's daemon; returns its stdout.
    pub fn docker(&self, arguments: &[&str]) -> Result<String, String> {
        let output = Command::new("docker")
            .arg("-H")
            .arg(self.docker_host())
            .args(arguments)
            .stdin(Stdio::null())
            .output()
            .map_err(|error| format!("cannot run the docker CLI: {error}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
        } else {
            Err(format!(
                "`docker {}` on droplet host {} failed: {}",
                arguments.join(" "),
                self.name,
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }

    /// Copies images from this machine's Docker (`/var/run/docker.sock`) into the
    /// droplet's: `docker save` piped into `docker load`, as one would onto a droplet
    /// with no registry. Returns how long it took.
    pub fn load_images(&self, images: &[&str]) -> Result<Duration, String> {
        let started = Instant::now();
        let mut save = Command::new("docker")
            .arg("save")
            .args(images)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| format!("cannot run `docker save`: {error}"))?;
        let Some(saved) = save.stdout.take() else {
            let _ = save.kill();
            let _ = save.wait();
            return Err("`docker save` has no stdout".to_string());
        };
        let load = Command::new("docker")
            .arg("-H")
            .arg(self.docker_host())
            .args(["load", "--quiet"])
            .stdin(Stdio::from(saved))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        let mut load = match load {
            Ok(load) => load,
            Err(error) => {
                let _ = save.kill();
                let _ = save.wait();
                return Err(format!("cannot run `docker load`: {error}"));
            }
        };
        let deadline = Instant::now() + IMAGE_LOAD_TIMEOUT;
        let saved = wait_or_kill(&mut save, deadline);
        let loaded = wait_or_kill(&mut load, deadline);
        let errors = |child: &mut Child| {
            let mut text = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = stderr.read_to_string(&mut text);
            }
            text.trim().to_string()
        };
        match (saved, loaded) {
            (Ok(()), Ok(())) => {
                eprintln!(
                    "droplet host {}: loaded {} in {:.2?}",
                    self.name,
                    images.join(", "),
                    started.elapsed()
                );
                Ok(started.elapsed())
            }
            (saved, loaded) => Err(format!(
                "moving {} into droplet host {} failed: docker save: {} {}; docker load: {} {}",
                images.join(", "),
                self.name,
                saved.err().unwrap_or_else(|| "ok".to_string()),
                errors(&mut save),
                loaded.err().unwrap_or_else(|| "ok".to_string()),
                errors(&mut load),
            )),
        }
    }

    /// This machine's end of the host's link (`sdh<index>`): where its traffic to other
    /// hosts is forwarded from.
    pub fn link(&self) -> &str {
        &self.root_link
    }

    /// The directory holding the host's keys and logs.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// Stops the host's dockerd (SIGTERM, a bounded wait, then SIGKILL), as a crashed or
    /// stopped Docker on a droplet: sshd stays up.
    pub fn stop_docker_daemon(&mut self) -> Result<(), String> {
        let Some(child) = self.dockerd.take() else {
            return Err(format!(
                "dockerd of droplet host {} is not running",
                self.name
            ));
        };
        stop_child(Some(child), DOCKERD_STOP_TIMEOUT);
        self.record.dockerd = None;
        self.save_record()
    }

    /// Starts the host's dockerd again after [`DropletHost::stop_docker_daemon`], with its
    /// data (a swarm member rejoins its swarm by itself).
    pub fn start_docker_daemon(&mut self) -> Result<(), String> {
        if self.dockerd.is_some() {
            return Err(format!(
                "dockerd of droplet host {} is already running",
                self.name
            ));
        }
        let _ = std::fs::remove_file(&self.docker_socket);
        self.start_dockerd(self.index)
    }

    /// Every process the host runs: its daemons, what they started, and its containers'
    /// processes.
    pub fn processes(&self) -> Vec<u32> {
        host_processes(&self.namespace, &self.cgroup, self.mount_namespace.as_ref())
    }

    /// The daemons' logs so far, for failure messages.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for file in ["sshd.log", "sshd.stderr", "dockerd.log"] {
            let content = std::fs::read_to_string(self.directory.join(file)).unwrap_or_default();
            let lines: Vec<&str> = content.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            text.push_str(&format!("--- {file}\n{}\n", tail.join("\n")));
        }
        text
    }

    /// Tears the host down and reports what, if anything, is still there.
    pub fn stop(mut self) -> Teardown {
        self.teardown()
    }

    fn teardown(&mut self) -> Teardown {
        let started = Instant::now();
        self.stopped = true;
        stop_child(self.dockerd.take(), DOCKERD_STOP_TIMEOUT);
        stop_child(self.sshd.take(), SSHD_STOP_TIMEOUT);
        let remaining = remove_host(
            &self.namespace,
            &self.root_link,
            &self.cgroup,
            &self.directory,
            None,
            self.mount_namespace.as_ref(),
        );
        // Released only now that nothing runs in it: the namespace, and every mount a
        // container made in it, ends here.
        self.mount_namespace = None;
        let leftovers = self.leftovers(remaining);
        let duration = started.elapsed();
        eprintln!(
            "droplet host {}: torn down in {duration:.2?}{}",
            self.name,
            if leftovers.is_empty() {
                ", nothing left".to_string()
            } else {
                format!(", left behind: {}", leftovers.join("; "))
            }
        );
        Teardown {
            duration,
            leftovers,
        }
    }

    /// Every trace of the host still on this machine, `processes` being those its
    /// removal found still running.
    fn leftovers(&self, processes: Vec<u32>) -> Vec<String> {
        let mut found = Vec::new();
        if !processes.is_empty() {
            found.push(format!("processes {processes:?}"));
        }
        if namespace_exists(&self.namespace) {
            found.push(format!("network namespace {}", self.namespace));
        }
        if link_exists(&self.root_link) {
            found.push(format!("link {}", self.root_link));
        }
        let directory = self.directory.display().to_string();
        for mount in mounts() {
            if mount.contains(&directory) || mount.contains(&self.namespace) {
                found.push(format!("mount {mount}"));
            }
        }
        for cgroup in cgroup_directories(&self.cgroup) {
            found.push(format!("cgroup {}", cgroup.display()));
        }
        if self.directory.exists() {
            found.push(format!("directory {directory}"));
        }
        found
    }

    fn remove_leftovers(&mut self) -> Result<(), String> {
        let record = read_record(&self.directory);
        if let Some(owner) = record.owner {
            if owner != std::process::id() && process_exists(owner) {
                return Err(format!(
                    "droplet host {} is in use by process {owner}: give this host another name and index",
                    self.name
                ));
            }
        }
        let exists = self.directory.exists()
            || namespace_exists(&self.namespace)
            || link_exists(&self.root_link)
            || !cgroup_directories(&self.cgroup).is_empty();
        if exists {
            eprintln!(
                "droplet host {}: removing the leftovers of an earlier run",
                self.name
            );
            let remaining = remove_host(
                &self.namespace,
                &self.root_link,
                &self.cgroup,
                &self.directory,
                record.dockerd,
                None,
            );
            let leftovers = self.leftovers(remaining);
            if !leftovers.is_empty() {
                return Err(format!(
                    "droplet host {}: an earlier run's leftovers could not be removed: {}",
                    self.name,
                    leftovers.join("; ")
                ));
            }
        }
        Ok(())
    }

    fn prepare_directory(&mut self, index: u8) -> Result<(), String> {
        let in_use = ip(&format!("-o -4 addr show to 10.210.{index}.0/29"))?;
        if !in_use.trim().is_empty() {
            return Err(format!(
                "the link range 10.210.{index}.0/29 of droplet host {} is already in use: {}; choose another index",
                self.name,
                in_use.trim()
            ));
        }
        for directory in ["docker-data", "docker-configuration"] {
            let path = self.directory.join(directory);
            std::fs::create_dir_all(&path)
                .map_err(|error| format!("cannot create {}: {error}", path.display()))?;
        }
        self.record.owner = Some(std::process::id());
        self.save_record()?;
        let host_key = self.directory.join("ssh_host_ed25519_key");
        generate_key(&host_key, &format!("stackctl-droplet-{}", self.name))?;
        generate_key(&self.client_key, "stackctl-droplet-client")?;
        copy(
            &with_extension(&self.client_key, "pub"),
            &self.directory.join("authorized_keys"),
        )?;
        let host_public_key = with_extension(&host_key, "pub");
        self.host_key_fingerprint = ssh_keygen_fingerprint(&host_public_key)?;
        let public_key = std::fs::read_to_string(&host_public_key)
            .map_err(|error| format!("cannot read {}: {error}", host_public_key.display()))?;
        write(
            &self.known_hosts,
            &format!("{} {}\n", self.address, public_key.trim_end()),
        )?;
        write(
            &self.directory.join("sshd_config"),
            &format!(
                "ListenAddress {address}:22\n\
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
                address = self.address,
                host_key = host_key.display(),
                authorized_keys = self.directory.join("authorized_keys").display(),
                pid_file = self.directory.join("sshd.pid").display(),
            ),
        )
    }

    fn create_network(&mut self) -> Result<(), String> {
        let (namespace, link) = (&self.namespace, &self.root_link);
        for command in [
            format!("netns add {namespace}"),
            format!("link add {link} type veth peer name eth0 netns {namespace}"),
            format!("addr add {}/29 dev {link}", self.operator_address),
            format!("addr add {}/29 dev {link}", self.outside_address),
            format!("link set {link} up"),
            format!("-n {namespace} link set lo up"),
            format!("-n {namespace} addr add {}/29 dev eth0", self.address),
            format!("-n {namespace} link set eth0 up"),
            format!(
                "-n {namespace} route add default via {}",
                self.operator_address
            ),
        ] {
            ip(&command)?;
        }
        Ok(())
    }

    fn start_sshd(&mut self) -> Result<(), String> {
        if !Path::new(SSHD).exists() {
            return Err(format!(
                "{SSHD} is missing: install the `openssh-server` package"
            ));
        }
        let stderr = log_file(&self.directory.join("sshd.stderr"))?;
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.namespace))
            .args([
                "--",
                "unshare",
                "--mount",
                "--uts",
                "--propagation",
                "private",
            ])
            .args([
                "--",
                "/bin/sh",
                "-c",
                MOUNT_SCRIPT,
                "stackctl-droplet-mounts",
            ])
            .arg(self.directory.join("docker-data"))
            .arg(self.directory.join("docker-configuration"))
            .arg(&self.name)
            .args([SSHD, "-D", "-f"])
            .arg(self.directory.join("sshd_config"))
            .arg("-E")
            .arg(self.directory.join("sshd.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|error| {
                format!(
                    "cannot start sshd in {} (nsenter, unshare): {error}",
                    self.namespace
                )
            })?;
        let pid = child.id();
        self.sshd = Some(child);
        self.record.sshd = Some(pid);
        self.save_record()?;
        let address = SocketAddr::from((self.address, 22));
        let deadline = Instant::now() + SSHD_READY_TIMEOUT;
        loop {
            if let Some(child) = self.sshd.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!(
                        "sshd of droplet host {} exited with {status}:\n{}",
                        self.name,
                        self.logs()
                    ));
                }
            }
            if ssh_banner(address) {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "sshd of droplet host {} did not answer at {address} within {SSHD_READY_TIMEOUT:?}:\n{}",
                    self.name,
                    self.logs()
                ));
            }
            std::thread::sleep(POLL);
        }
        // sshd answers only after the mount script ran, so its mount namespace is the
        // droplet's.
        let path = format!("/proc/{pid}/ns/mnt");
        let handle =
            std::fs::File::open(&path).map_err(|error| format!("cannot open {path}: {error}"))?;
        let id = namespace_id(pid, "mnt").ok_or_else(|| format!("cannot read {path}"))?;
        self.mount_namespace = Some(MountNamespace {
            id,
            _handle: handle,
        });
        Ok(())
    }

    fn start_dockerd(&mut self, index: u8) -> Result<(), String> {
        let sshd = self.record.sshd.ok_or("sshd is not running")?;
        let log = log_file(&self.directory.join("dockerd.log"))?;
        let log_again = log
            .try_clone()
            .map_err(|error| format!("cannot reopen dockerd.log: {error}"))?;
        let child = Command::new("nsenter")
            // No registry is reachable here: a swarm task runs the image the node already
            // has instead of waiting for a pull that cannot succeed (5-30 s per task).
            .env("DOCKER_SERVICE_PREFER_OFFLINE_IMAGE", "1")
            .arg(format!("--target={sshd}"))
            .args(["--mount", "--uts", "--net", "--", "dockerd"])
            .args(["--host", "unix:///var/run/docker.sock", "--host"])
            .arg(self.docker_host())
            .arg(format!("--bip=10.211.{index}.1/24"))
            .arg(format!("--cgroup-parent={}", self.cgroup))
            .args([
                "--iptables=true",
                "--userland-proxy=false",
                "--shutdown-timeout=5",
                "--log-level=warn",
            ])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_again)
            .spawn()
            .map_err(|error| format!("cannot start dockerd in {}: {error}", self.namespace))?;
        self.record.dockerd = Some(child.id());
        self.dockerd = Some(child);
        self.save_record()?;
        let deadline = Instant::now() + DOCKERD_READY_TIMEOUT;
        loop {
            if let Some(child) = self.dockerd.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!(
                        "dockerd of droplet host {} exited with {status}:\n{}",
                        self.name,
                        self.logs()
                    ));
                }
            }
            if docker_ping(&self.docker_socket) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "dockerd of droplet host {} did not answer within {DOCKERD_READY_TIMEOUT:?}:\n{}",
                    self.name,
                    self.logs()
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    fn save_record(&self) -> Result<(), String> {
        let record = &self.record;
        let field = |value: &Option<u32>| value.map(|pid| pid.to_string()).unwrap_or_default();
        write(
            &self.directory.join("host.record"),
            &format!(
                "owner={}\nsshd={}\ndockerd={}\n",
                field(&record.owner),
                field(&record.sshd),
                field(&record.dockerd),
            ),
        )
    }
}

impl Drop for DropletHost {
    fn drop(&mut self) {
        if !self.stopped {
            self.teardown();
        }
    }
}

fn validate(name: &str, index: u8) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 24
        && name.chars().all(|character| {
            character.is_ascii_lowercase() || character.is_ascii_digit() || character == '-'
        });
    if !valid {
        return Err(format!(
            "droplet host name `{name}`: use 1 to 24 characters from a-z, 0-9 and `-`"
        ));
    }
    if index == 0 || index == 255 {
        return Err(format!(
            "droplet host index {index}: use 1 to 254 (the link is 10.210.<index>.0/29)"
        ));
    }
    Ok(())
}

fn read_record(directory: &Path) -> Record {
    let text = std::fs::read_to_string(directory.join("host.record")).unwrap_or_default();
    let mut record = Record::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key {
            "owner" => record.owner = value.parse().ok(),
            "sshd" => record.sshd = value.parse().ok(),
            "dockerd" => record.dockerd = value.parse().ok(),
            _ => {}
        }
    }
    record
}

/// Removes everything of a host, whether this process started it or a crashed one did:
/// a recorded dockerd first with SIGTERM (so it stops its containers), then whatever
/// still runs in the host's network namespace, mount namespace (while this process
/// holds it) or cgroup, then the namespace, the link, the cgroups and the directory.
/// A process is signalled only while it is in one of those: a PID that was reused
/// since is left alone. Returns the processes still running after the bounded waits.
fn remove_host(
    namespace: &str,
    root_link: &str,
    cgroup: &str,
    directory: &Path,
    dockerd: Option<u32>,
    mount: Option<&MountNamespace>,
) -> Vec<u32> {
    let running = |pid: u32| host_processes(namespace, cgroup, mount).contains(&pid);
    if let Some(pid) = dockerd.filter(|pid| running(*pid)) {
        signal(pid, "TERM");
        let deadline = Instant::now() + DOCKERD_STOP_TIMEOUT;
        while running(pid) && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
    }
    let deadline = Instant::now() + KILL_TIMEOUT;
    let remaining = loop {
        let pids = host_processes(namespace, cgroup, mount);
        if pids.is_empty() || Instant::now() > deadline {
            break pids;
        }
        for pid in pids {
            signal(pid, "KILL");
        }
        std::thread::sleep(POLL);
    };
    let mut cgroups = cgroup_directories(cgroup);
    // Deepest first: a cgroup with children cannot be removed.
    cgroups.sort_by_key(|path| std::cmp::Reverse(path.components().count()));
    for path in cgroups {
        let _ = std::fs::remove_dir(&path);
    }
    if namespace_exists(namespace) {
        let _ = ip(&format!("netns del {namespace}"));
    }
    if link_exists(root_link) {
        let _ = ip(&format!("link del {root_link}"));
    }
    // The daemons' mounts live and die in their own mount namespace; anything under the
    // directory in this one would be a bug, and must not keep the directory alive.
    let directory_text = directory.display().to_string();
    let mut stray: Vec<String> = mounts()
        .into_iter()
        .filter(|mount| mount.contains(&directory_text))
        .collect();
    stray.sort_by_key(|mount| std::cmp::Reverse(mount.len()));
    for mount in stray {
        let _ = Command::new("umount").args(["-l", &mount]).status();
    }
    if directory.exists() {
        let _ = std::fs::remove_dir_all(directory);
    }
    remaining
}

/// SIGTERM, then SIGKILL after `timeout`; the child is reaped either way (its exit
/// status does not matter here).
fn stop_child(child: Option<Child>, timeout: Duration) {
    let Some(mut child) = child else {
        return;
    };
    if let Ok(None) = child.try_wait() {
        signal(child.id(), "TERM");
        let _ = wait_or_kill(&mut child, Instant::now() + timeout);
    }
    let _ = child.wait();
}

/// Waits for the child until `deadline`; then kills it. Either way it is reaped.
fn wait_or_kill(child: &mut Child, deadline: Instant) -> Result<(), String> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("exited with {status}")),
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("did not finish in time and was killed".to_string());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(error) => return Err(format!("cannot wait for it: {error}")),
        }
    }
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn process_exists(pid: u32) -> bool {
    // A zombie has released its namespaces and resources; only its table entry is left.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
            state != Some(Some('Z'))
        })
        .unwrap_or(false)
}

/// `net:[4026532…]`: the namespace a process is in, as the kernel names it.
fn namespace_id(pid: u32, kind: &str) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .ok()
        .map(|target| target.display().to_string())
}

/// Every process of the host: in its network namespace, in its mount namespace (only
/// while held open), or in its containers' cgroup. Never this process.
fn host_processes(namespace: &str, cgroup: &str, mount: Option<&MountNamespace>) -> Vec<u32> {
    let mut pids = processes_in_named_namespace(namespace);
    pids.extend(cgroup_processes(cgroup));
    if let Some(mount) = mount {
        pids.extend(
            all_processes()
                .into_iter()
                .filter(|pid| namespace_id(*pid, "mnt").as_ref() == Some(&mount.id)),
        );
    }
    pids.retain(|pid| *pid != std::process::id() && process_exists(*pid));
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Processes in the named network namespace (kept alive by its name, so its id is
/// stable).
fn processes_in_named_namespace(namespace: &str) -> Vec<u32> {
    if !namespace_exists(namespace) {
        return Vec::new();
    }
    ip(&format!("netns pids {namespace}"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|pid| pid.parse().ok())
        .collect()
}

fn all_processes() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect()
}

/// The host's cgroup under every mounted hierarchy (cgroup v1: one per controller).
fn cgroup_directories(cgroup: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut hierarchies = vec![root.to_path_buf()];
    hierarchies.extend(
        std::fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| entry.file_type().map(|kind| kind.is_dir()).unwrap_or(false))
            .map(|entry| entry.path()),
    );
    let mut found = Vec::new();
    for hierarchy in hierarchies {
        let top = hierarchy.join(cgroup);
        if top.is_dir() {
            collect_directories(&top, &mut found);
        }
    }
    found
}

fn collect_directories(directory: &Path, found: &mut Vec<PathBuf>) {
    found.push(directory.to_path_buf());
    for entry in std::fs::read_dir(directory).into_iter().flatten().flatten() {
        if entry.file_type().map(|kind| kind.is_dir()).unwrap_or(false) {
            collect_directories(&entry.path(), found);
        }
    }
}

fn cgroup_processes(cgroup: &str) -> Vec<u32> {
    let mut pids: Vec<u32> = cgroup_directories(cgroup)
        .iter()
        .flat_map(|directory| {
            std::fs::read_to_string(directory.join("cgroup.procs"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect::<Vec<u32>>()
        })
        .filter(|pid| process_exists(*pid))
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

fn namespace_exists(namespace: &str) -> bool {
    Path::new("/run/netns").join(namespace).exists()
}

fn link_exists(link: &str) -> bool {
    Path::new("/sys/class/net").join(link).exists()
}

/// This mount namespace's mount points.
fn mounts() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1).map(str::to_string))
        .collect()
}

fn ssh_banner(address: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(300)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut banner = [0u8; 4];
    stream.read_exact(&mut banner).is_ok() && &banner == b"SSH-"
}

fn docker_ping(socket: &Path) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = [0u8; 12];
    stream.read_exact(&mut answer).is_ok() && answer.ends_with(b" 200")
}

/// `ip` with arguments separated by spaces (names here never contain one).
fn ip(arguments: &str) -> Result<String, String> {
    run("ip", &arguments.split(' ').collect::<Vec<_>>())
}

fn run(program: &str, arguments: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(arguments)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("cannot run `{program}`: {error}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed: {}",
            arguments.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn write(path: &Path, contents: &str) -> Result<(), String> {
    std::fs::write(path, contents)
        .map_err(|error| format!("cannot write {}: {error}", path.display()))
}

fn log_file(path: &Path) -> Result<std::fs::File, String> {
    std::fs::File::create(path)
        .map_err(|error| format!("cannot create {}: {error}", path.display()))
}
