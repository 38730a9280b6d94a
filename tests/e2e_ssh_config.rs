//! End to end: `~/.ssh/config` honoured for the target (`STACKCTL_SSH_CONFIG` points at
//! the test's file). Two real OpenSSH servers on loopback (`TestSshd`): the target is
//! named only by a `Host` alias whose `HostName`, `User`, `Port`, `IdentityFile` and
//! `ProxyJump` come from the file, and the jump host is itself an alias of the file. The
//! plan reads the live Docker daemon behind the target through the jump host's
//! `direct-tcpip` channel. `.ci/run` installs sshd and starts dockerd; without them this
//! test fails, it never skips.

mod support;

use stackctl_host::testing::TestSshd;
use support::TestEnvironment;

fn start_sshd() -> TestSshd {
    TestSshd::start().unwrap_or_else(|error| panic!("cannot start a test sshd: {error}"))
}

#[test]
fn an_ssh_config_host_alias_with_user_port_identity_file_and_proxy_jump_reaches_the_target() {
    let target = start_sshd();
    let jump = start_sshd();
    let environment = TestEnvironment::new();
    // One known_hosts file for both servers (`[127.0.0.1]:<port>` entries).
    let known_hosts = format!(
        "{}{}",
        std::fs::read_to_string(&target.known_hosts).unwrap(),
        std::fs::read_to_string(&jump.known_hosts).unwrap()
    );
    environment.write("known_hosts", &known_hosts);
    environment.write(
        "ssh_config",
        &format!(
            "# the target, reached through the hop\n\
             Host deploy-target\n\
             \x20   HostName 127.0.0.1\n\
             \x20   User {target_user}\n\
             \x20   Port {target_port}\n\
             \x20   IdentityFile {target_key}\n\
             \x20   ProxyJump hop\n\
             \n\
             Host hop\n\
             \x20   HostName 127.0.0.1\n\
             \x20   Port {jump_port}\n\
             \x20   User {jump_user}\n\
             \x20   IdentityFile {jump_key}\n\
             \n\
             Host *\n\
             \x20   User nobody-by-default\n\
             \x20   Port 1\n",
            target_user = target.user,
            target_port = target.port,
            target_key = target.client_key.display(),
            jump_port = jump.port,
            jump_user = jump.user,
            jump_key = jump.client_key.display(),
        ),
    );
    let name = format!("e2e-sshconfig-{}", std::process::id());
    environment.write(
        "stack.toml",
        &format!(
            "[stack]\nname = \"{name}\"\n\n[target]\nhost = {{ address = \"deploy-target\" }}\n\
             known_hosts = {known:?}\nroot = {root:?}\n\n\
             [services.web]\nimage = \"stackctl-test/server:latest\"\npull = false\nport = 8080\n",
            known = environment.path().join("known_hosts").display().to_string(),
            root = environment.path().join("host-root").display().to_string(),
        ),
    );
    let config = environment.path().join("ssh_config");
    let plan = environment.run_with_env(
        &["plan", "--detailed-exitcode"],
        &[("STACKCTL_SSH_CONFIG", config.to_str().unwrap())],
    );
    let output = format!("{}{}", plan.stdout, plan.stderr);
    assert_eq!(
        plan.code, 2,
        "a plan with changes, live state read:\n{output}"
    );
    assert!(!output.contains("live state was not read"), "{output}");
    assert!(output.contains("service.web"), "{output}");
    assert!(
        jump.log().contains("Accepted publickey"),
        "the run went through the jump host:\n{}",
        jump.log()
    );
    assert!(
        target.log().contains("Accepted publickey"),
        "the run reached the target:\n{}",
        target.log()
    );

    // Without the file the alias means nothing: the failure names the host it tried.
    let without = environment.run_with_env(
        &["plan", "--detailed-exitcode"],
        &[("STACKCTL_SSH_CONFIG", "/nonexistent/ssh_config")],
    );
    let output = format!("{}{}", without.stdout, without.stderr);
    assert!(output.contains("deploy-target"), "{output}");
    assert!(
        output.contains("live state was not read") || without.code != 0,
        "{output}"
    );
}
