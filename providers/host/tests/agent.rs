//! Authentication through an ssh-agent found at `SSH_AUTH_SOCK`.
//!
//! Its own test binary (so its own process): it sets `SSH_AUTH_SOCK`, which would
//! change how the other tests authenticate.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stackctl_host::testing::{ssh_keygen_fingerprint, TestSshd};
use stackctl_host::{Host, SshHost, SshOptions};

/// An `ssh-agent` in the foreground, killed on drop.
struct Agent {
    child: std::process::Child,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn keys_held_by_an_agent_are_used() {
    let sshd = TestSshd::start().unwrap();
    let socket = sshd.directory().join("agent.sock");
    let agent = Agent {
        child: Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .spawn()
            .expect("ssh-agent (package openssh-client) runs"),
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !socket.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let added = Command::new("ssh-add")
        .arg(&sshd.client_key)
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    std::env::set_var("SSH_AUTH_SOCK", &socket);

    // No identity file: only the agent (and ~/.ssh defaults, which this server does
    // not know) can log in.
    let options = SshOptions {
        identity_files: Vec::new(),
        ..sshd.ssh_options()
    };
    let host = SshHost::connect(options)
        .await
        .unwrap_or_else(|error| panic!("{error:?}\n{}", sshd.log()));
    let contents = host
        .read_files(&["/etc/hostname".to_string()])
        .await
        .unwrap();
    assert!(contents[0].is_some());
    let client_fingerprint =
        ssh_keygen_fingerprint(&sshd.client_key.with_extension("pub")).unwrap();
    assert!(sshd.log().contains(&format!(
        "Accepted publickey for {} from 127.0.0.1",
        sshd.user
    )));
    assert!(sshd.log().contains(&client_fingerprint));
    drop(agent);
}
