//! Several droplet-shaped hosts that reach each other, for a Docker Swarm in tests.
//!
//! Each [`DropletHost`] has its own link to this machine (`10.210.<index>.0/29`) with its
//! default route through it, so traffic between two hosts is forwarded by this machine.
//! This machine's dockerd sets the `FORWARD` policy to `DROP`; [`SwarmHosts::start`] puts
//! one `ACCEPT` rule per ordered pair of links at the top of the `DOCKER-USER` chain (the
//! chain Docker leaves to the administrator and jumps to first), which lets the swarm's
//! ports through — 2377/tcp (control), 7946/tcp+udp (gossip), 4789/udp (VXLAN) — and
//! anything else between the hosts, and nothing to or from any other interface. The rules
//! are removed on teardown (drop), before the hosts are.
//!
//! One SSH identity and one known_hosts file reach every host, as for a fleet of
//! droplets: each host's sshd accepts every host's client key, and
//! [`SwarmHosts::known_hosts`] trusts every host key under its address.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::DropletHost;

/// Running droplet hosts that reach each other; torn down when dropped.
pub struct SwarmHosts {
    /// The hosts, in the order given to [`SwarmHosts::start`].
    pub hosts: Vec<DropletHost>,
    /// A known_hosts file trusting every host's key under its address.
    pub known_hosts: PathBuf,
    /// A private key every host's sshd accepts for root.
    pub client_key: PathBuf,
    rules: Vec<Vec<String>>,
    directory: tempfile::TempDir,
}

impl SwarmHosts {
    /// Starts one [`DropletHost`] per `(name, index)` and lets them reach each other.
    pub fn start(hosts: &[(&str, u8)]) -> Result<SwarmHosts, String> {
        let directory = tempfile::tempdir()
            .map_err(|error| format!("cannot create a temporary directory: {error}"))?;
        let mut swarm = SwarmHosts {
            hosts: Vec::new(),
            known_hosts: directory.path().join("known_hosts"),
            client_key: PathBuf::new(),
            rules: Vec::new(),
            directory,
        };
        for (name, index) in hosts {
            swarm.hosts.push(DropletHost::start(name, *index)?);
        }
        swarm.share_keys()?;
        swarm.allow_forwarding()?;
        Ok(swarm)
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> &DropletHost {
        self.hosts
            .iter()
            .find(|host| host.name == name)
            .unwrap_or_else(|| panic!("no swarm host named {name}"))
    }

    /// The host named `name`, to stop or start its daemon.
    pub fn host_mut(&mut self, name: &str) -> &mut DropletHost {
        self.hosts
            .iter_mut()
            .find(|host| host.name == name)
            .unwrap_or_else(|| panic!("no swarm host named {name}"))
    }

    /// Copies `images` from this machine's Docker into every host's.
    pub fn load_images(&self, images: &[&str]) -> Result<(), String> {
        for host in &self.hosts {
            host.load_images(images)?;
        }
        Ok(())
    }

    /// Every host's logs, for failure messages.
    pub fn logs(&self) -> String {
        self.hosts
            .iter()
            .map(|host| format!("=== {}\n{}", host.name, host.logs()))
            .collect()
    }

    fn share_keys(&mut self) -> Result<(), String> {
        let first = self
            .hosts
            .first()
            .ok_or("a swarm needs at least one host")?;
        let key = self.directory.path().join("client_ed25519_key");
        std::fs::copy(&first.client_key, &key)
            .map_err(|error| format!("cannot copy the client key: {error}"))?;
        std::fs::copy(
            first.client_key.with_extension("pub"),
            key.with_extension("pub"),
        )
        .map_err(|error| format!("cannot copy the client public key: {error}"))?;
        let public_key = std::fs::read_to_string(key.with_extension("pub"))
            .map_err(|error| format!("cannot read the client public key: {error}"))?;
        let mut known_hosts = String::new();
        for host in &self.hosts {
            let authorized = host.directory().join("authorized_keys");
            let mut keys = std::fs::read_to_string(&authorized)
                .map_err(|error| format!("cannot read {}: {error}", authorized.display()))?;
            if !keys.contains(public_key.trim()) {
                keys.push_str(&public_key);
                std::fs::write(&authorized, keys)
                    .map_err(|error| format!("cannot write {}: {error}", authorized.display()))?;
            }
            known_hosts.push_str(
                &std::fs::read_to_string(&host.known_hosts).map_err(|error| {
                    format!("cannot read {}: {error}", host.known_hosts.display())
                })?,
            );
        }
        std::fs::write(&self.known_hosts, known_hosts)
            .map_err(|error| format!("cannot write {}: {error}", self.known_hosts.display()))?;
        self.client_key = key;
        Ok(())
    }

    fn allow_forwarding(&mut self) -> Result<(), String> {
        let links: Vec<String> = self
            .hosts
            .iter()
            .map(|host| host.link().to_string())
            .collect();
        for from in &links {
            for to in &links {
                if from == to {
                    continue;
                }
                let rule: Vec<String> = ["-i", from, "-o", to, "-j", "ACCEPT"]
                    .iter()
                    .map(|part| part.to_string())
                    .collect();
                iptables("-I", &rule)?;
                self.rules.push(rule);
            }
        }
        Ok(())
    }

    /// The rules this value added that are still in `DOCKER-USER` (empty after drop).
    pub fn remaining_rules(&self) -> Vec<String> {
        self.rules
            .iter()
            .filter(|rule| iptables("-C", rule).is_ok())
            .map(|rule| rule.join(" "))
            .collect()
    }
}

impl Drop for SwarmHosts {
    fn drop(&mut self) {
        for rule in self.rules.drain(..) {
            // Bounded: once per copy of the rule this value inserted.
            if let Err(error) = iptables("-D", &rule) {
                eprintln!(
                    "swarm hosts: cannot remove the DOCKER-USER rule `{}`: {error}",
                    rule.join(" ")
                );
            }
        }
        // The hosts go after the rules (their own drop tears each down).
        self.hosts.clear();
    }
}

fn iptables(operation: &str, rule: &[String]) -> Result<(), String> {
    let output = Command::new("iptables")
        .args(["-w", "5", operation, "DOCKER-USER"])
        .args(rule)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("cannot run iptables: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`iptables {operation} DOCKER-USER {}` failed: {}",
            rule.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}
