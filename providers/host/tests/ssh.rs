//! The SSH transport against a real OpenSSH server on loopback (see
//! `stackctl_host::testing::TestSshd`) and the real Docker daemon behind it.
//!
//! The server runs on this machine, so a file written "on the host" is checked directly
//! on the local file system.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stackctl_host::testing::{ssh_keygen_fingerprint, TestSshd};
use stackctl_host::{
    Host, HostConnector, HostError, HostKeyTrust, SshHost, SshOptions, Target, Unlocked,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn start_sshd() -> TestSshd {
    TestSshd::start().unwrap_or_else(|error| panic!("{error}"))
}

async fn connect(sshd: &TestSshd) -> SshHost {
    SshHost::connect(sshd.ssh_options())
        .await
        .unwrap_or_else(|error| panic!("{error}\nsshd log:\n{}", sshd.log()))
}

fn refused_text(error: HostError) -> String {
    match error {
        HostError::Refused { message, hint } => {
            format!("{message}\nhint: {}", hint.unwrap_or_default())
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn scratch_directory() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("stackctl-host-test-")
        .tempdir()
        .unwrap()
}

fn path_in(directory: &tempfile::TempDir, name: &str) -> String {
    format!("{}/{name}", directory.path().display())
}

// ---------------------------------------------------------------------------------
// Host key trust
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_host_in_known_hosts_is_accepted() {
    let sshd = start_sshd();
    let host = connect(&sshd).await;
    let key = host.host_key();
    assert_eq!(
        key.fingerprint, sshd.host_key_fingerprint,
        "same text as `ssh-keygen -lf`"
    );
    assert_eq!(key.key_type, "ED25519");
    assert_eq!(
        key.trust,
        HostKeyTrust::KnownHosts {
            path: sshd.known_hosts.clone(),
            line: 1
        }
    );
    assert_eq!(
        host.describe(),
        format!("{}@127.0.0.1:{}", sshd.user, sshd.port)
    );
}

#[tokio::test]
async fn a_hashed_known_hosts_entry_is_accepted() {
    let sshd = start_sshd();
    let status = std::process::Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&sshd.known_hosts)
        .output()
        .unwrap();
    assert!(status.status.success());
    let hashed = std::fs::read_to_string(&sshd.known_hosts).unwrap();
    assert!(hashed.starts_with("|1|"), "{hashed}");
    let host = connect(&sshd).await;
    assert_eq!(host.host_key_fingerprint(), sshd.host_key_fingerprint);
}

#[tokio::test]
async fn an_unknown_host_key_is_refused_without_the_accept_flag() {
    let sshd = start_sshd();
    let empty_known_hosts = sshd.directory().join("empty_known_hosts");
    let options = SshOptions {
        known_hosts: Some(empty_known_hosts),
        ..sshd.ssh_options()
    };
    let text = refused_text(SshHost::connect(options).await.unwrap_err());
    assert!(text.contains("is not known"), "{text}");
    assert!(
        text.contains(&format!("{} (ED25519)", sshd.host_key_fingerprint)),
        "{text}"
    );
    assert!(
        text.contains("accept"),
        "the hint names the way out: {text}"
    );
}

#[tokio::test]
async fn an_unknown_host_key_is_accepted_with_the_flag_and_reported_for_pinning() {
    let sshd = start_sshd();
    let options = SshOptions {
        known_hosts: Some(sshd.directory().join("empty_known_hosts")),
        accept_new_host_key: true,
        ..sshd.ssh_options()
    };
    let connector = HostConnector::new(Target::Ssh(options.clone()));
    assert_eq!(
        connector.host_key_fingerprint(),
        None,
        "nothing before connecting"
    );
    let host = connector.connect(None).await.unwrap();
    assert_eq!(
        host.describe(),
        format!("{}@127.0.0.1:{}", sshd.user, sshd.port)
    );
    let key = connector.host_key().unwrap();
    assert_eq!(key.trust, HostKeyTrust::NewlyAccepted);
    assert_eq!(key.fingerprint, sshd.host_key_fingerprint);

    // The next run pins it: no known_hosts entry and no flag needed.
    let pinned = SshOptions {
        accept_new_host_key: false,
        pinned_fingerprint: Some(key.fingerprint.clone()),
        ..options
    };
    let host = SshHost::connect(pinned).await.unwrap();
    assert_eq!(host.host_key().trust, HostKeyTrust::Pinned);
}

#[tokio::test]
async fn a_changed_host_key_is_refused_showing_both_fingerprints() {
    let sshd = start_sshd();
    let other_key = sshd.generate_other_key("old_host_key").unwrap();
    let other_public = other_key.with_extension("pub");
    let other_fingerprint = ssh_keygen_fingerprint(&other_public).unwrap();
    let recorded = std::fs::read_to_string(&other_public).unwrap();
    std::fs::write(
        &sshd.known_hosts,
        format!("[127.0.0.1]:{} {recorded}", sshd.port),
    )
    .unwrap();

    // Even the accept flag does not let a changed key through.
    for accept_new_host_key in [false, true] {
        let options = SshOptions {
            accept_new_host_key,
            ..sshd.ssh_options()
        };
        let text = refused_text(SshHost::connect(options).await.unwrap_err());
        assert!(text.contains("CHANGED"), "{text}");
        assert!(
            text.contains(&format!("expected {other_fingerprint} (ED25519)")),
            "{text}"
        );
        assert!(
            text.contains(&format!("got {} (ED25519)", sshd.host_key_fingerprint)),
            "{text}"
        );
        assert!(
            text.contains(&format!("ssh-keygen -R '[127.0.0.1]:{}'", sshd.port)),
            "{text}"
        );
    }

    // A fingerprint pinned in state that no longer matches is refused the same way.
    let options = SshOptions {
        known_hosts: Some(sshd.directory().join("empty_known_hosts")),
        pinned_fingerprint: Some(other_fingerprint.clone()),
        accept_new_host_key: true,
        ..sshd.ssh_options()
    };
    let text = refused_text(SshHost::connect(options).await.unwrap_err());
    assert!(
        text.contains(&format!("expected {other_fingerprint} (pinned in state)")),
        "{text}"
    );
    assert!(text.contains(&sshd.host_key_fingerprint), "{text}");
}

// ---------------------------------------------------------------------------------
// Authentication and reachability
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn an_unauthorised_client_key_is_refused_with_a_hint_naming_the_keys_tried() {
    let sshd = start_sshd();
    let stranger = sshd.generate_other_key("stranger_key").unwrap();
    let missing = sshd.directory().join("no_such_key");
    let options = SshOptions {
        identity_files: vec![missing.clone(), stranger.clone()],
        ..sshd.ssh_options()
    };
    let text = refused_text(SshHost::connect(options).await.unwrap_err());
    assert!(text.contains("refused public-key authentication"), "{text}");
    assert!(
        text.contains(&format!("{} (not found)", missing.display())),
        "{text}"
    );
    assert!(text.contains(&stranger.display().to_string()), "{text}");
    assert!(text.contains("rejected by the server"), "{text}");
    assert!(text.contains("authorized_keys"), "{text}");
}

#[tokio::test]
async fn a_server_that_hangs_up_after_too_many_keys_is_a_refusal_naming_them() {
    let sshd = TestSshd::start_with_config(&["MaxAuthTries 1"]).unwrap();
    let first = sshd.generate_other_key("first_stranger").unwrap();
    let second = sshd.generate_other_key("second_stranger").unwrap();
    let options = SshOptions {
        identity_files: vec![first.clone(), second, sshd.client_key.clone()],
        ..sshd.ssh_options()
    };
    let text = refused_text(SshHost::connect(options).await.unwrap_err());
    assert!(text.contains(&first.display().to_string()), "{text}");
    assert!(text.contains("authorized_keys"), "{text}");
}

#[tokio::test]
async fn a_closed_port_is_unreachable_at_once() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let error = SshHost::connect(SshOptions::new("127.0.0.1", port, "root"))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    match error {
        HostError::Unreachable { target, cause } => {
            assert_eq!(target, format!("root@127.0.0.1:{port}"));
            assert!(cause.to_lowercase().contains("refused"), "{cause}");
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_silent_server_is_unreachable_after_the_connect_timeout() {
    // Accepts TCP connections and never says a word, like a black-holed SSH port.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
            if held.len() > 4 {
                break;
            }
        }
    });
    let options = SshOptions {
        connect_timeout: Duration::from_millis(800),
        ..SshOptions::new("127.0.0.1", port, "root")
    };
    let started = Instant::now();
    let error = SshHost::connect(options).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(700) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    match error {
        HostError::Unreachable { target, cause } => {
            assert_eq!(target, format!("root@127.0.0.1:{port}"));
            assert!(
                cause.contains("800 ms") && cause.contains("timeout"),
                "{cause}"
            );
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
    silent.abort();
}

#[tokio::test]
async fn an_operation_that_hangs_fails_after_the_operation_timeout() {
    let sshd = start_sshd();
    let options = SshOptions {
        operation_timeout: Duration::from_millis(1500),
        ..sshd.ssh_options()
    };
    let host = SshHost::connect(options).await.unwrap();
    // Reading a FIFO nobody writes to blocks forever.
    let directory = scratch_directory();
    let fifo = path_in(&directory, "fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let started = Instant::now();
    let error = host
        .read_files(std::slice::from_ref(&fifo))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1400) && elapsed < Duration::from_secs(6),
        "{elapsed:?}"
    );
    assert!(
        error.to_string().contains("1500 ms (operation timeout)"),
        "{error}"
    );
    // The hung command was killed, not left holding one of the server's sessions.
    let still_running = || {
        std::process::Command::new("pgrep")
            .arg("-f")
            .arg(format!("cat -- {fifo}"))
            .output()
            .map(|output| output.status.success())
            .unwrap_or(false)
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while still_running() && Instant::now() < deadline {
        // An async sleep: the connection's task must run to deliver the kill.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !still_running(),
        "the command reading {fifo} is still running\n{}",
        sshd.log()
    );
    // The connection is still good for the next operation.
    assert_eq!(
        host.read_files(&["/nonexistent/file".to_string()])
            .await
            .unwrap(),
        vec![None]
    );
}

#[tokio::test]
async fn a_host_without_a_timeout_program_still_runs_commands() {
    // A PATH with only the tools the scripts use, and no `timeout`.
    let tools = scratch_directory();
    for tool in ["sh", "cat", "mkdir", "mv", "chmod", "rm"] {
        let found = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .unwrap();
        let source = String::from_utf8_lossy(&found.stdout).trim().to_string();
        std::os::unix::fs::symlink(&source, tools.path().join(tool)).unwrap();
    }
    let path_line = format!("SetEnv PATH={}", tools.path().display());
    let sshd = TestSshd::start_with_config(&[&path_line]).unwrap();
    let host = connect(&sshd).await;
    let directory = scratch_directory();
    let path = path_in(&directory, "file");
    for round in 0..2 {
        let contents = format!("round {round}");
        host.write_file(&path, contents.as_bytes(), 0o644, "/tmp")
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            host.read_files(std::slice::from_ref(&path)).await.unwrap(),
            vec![Some(contents.into_bytes())]
        );
    }
}

#[tokio::test]
async fn a_login_shell_that_prints_a_banner_does_not_corrupt_output() {
    // Like a `~/.bashrc` that echoes: every command's stdout starts with a banner.
    let sshd = TestSshd::start_with_config(&[
        "ForceCommand printf 'Welcome!\\n'; eval \"$SSH_ORIGINAL_COMMAND\"",
    ])
    .unwrap();
    let host = connect(&sshd).await;
    let directory = scratch_directory();
    let path = path_in(&directory, "file");
    host.write_file(&path, b"contents", 0o644, "/tmp")
        .await
        .unwrap();
    assert_eq!(
        host.read_files(std::slice::from_ref(&path)).await.unwrap(),
        vec![Some(b"contents".to_vec())]
    );
    let lock = path_in(&directory, "lock");
    host.lock(&lock, "alice").await.unwrap();
    match host.lock(&lock, "bob").await.unwrap_err() {
        HostError::Locked { holder, .. } => assert_eq!(holder, "alice"),
        other => panic!("expected the lock to be held, got {other:?}"),
    }
}

#[tokio::test]
async fn a_droplet_target_connects_to_the_address_it_is_given() {
    let sshd = start_sshd();
    let connector = HostConnector::new(Target::Droplet {
        droplet: "web-1".to_string(),
        options: SshOptions {
            address: String::new(),
            ..sshd.ssh_options()
        },
    });
    let host = connector.connect(Some("127.0.0.1")).await.unwrap();
    assert_eq!(
        host.describe(),
        format!("{}@127.0.0.1:{}", sshd.user, sshd.port)
    );
    assert_eq!(
        connector.host_key_fingerprint(),
        Some(sshd.host_key_fingerprint.clone())
    );
}

// ---------------------------------------------------------------------------------
// Channels and streams
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn twenty_concurrent_operations_share_one_connection() {
    let sshd = start_sshd();
    let host = Arc::new(connect(&sshd).await);
    let directory = scratch_directory();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for index in 0..20 {
        let host = host.clone();
        let path = path_in(&directory, &format!("file-{index}"));
        tasks.push(tokio::spawn(async move {
            host.write_file(&path, format!("contents {index}").as_bytes(), 0o644, "/tmp")
                .await?;
            host.read_files(&[path]).await
        }));
    }
    for (index, task) in tasks.into_iter().enumerate() {
        let contents = task
            .await
            .unwrap()
            .unwrap_or_else(|error| panic!("{error}\n{}", sshd.log()));
        assert_eq!(
            contents,
            vec![Some(format!("contents {index}").into_bytes())]
        );
    }
    eprintln!(
        "20 concurrent write+read pairs took {:?}",
        started.elapsed()
    );
    let logins = sshd.log().matches("Accepted publickey").count();
    assert_eq!(logins, 1, "one connection for the whole run");
}

#[tokio::test]
async fn refused_session_channels_are_retried_until_a_slot_frees() {
    // A server allowing only 2 sessions per connection refuses most of the 8 channels
    // the client opens at once; every operation must still succeed.
    let sshd = TestSshd::start_with_config(&["MaxSessions 2"]).unwrap();
    let host = Arc::new(connect(&sshd).await);
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let host = host.clone();
        tasks.push(tokio::spawn(async move {
            host.read_files(&["/etc/hostname".to_string()]).await
        }));
    }
    for task in tasks {
        task.await
            .unwrap()
            .unwrap_or_else(|error| panic!("{error}\n{}", sshd.log()));
    }
    assert!(
        sshd.log().contains("no more sessions"),
        "the server did refuse some:\n{}",
        sshd.log()
    );
}

async fn ping_docker(host: &dyn Host, sshd: &TestSshd) -> String {
    let mut stream = host
        .docker_stream()
        .await
        .unwrap_or_else(|error| panic!("{error}\nsshd log:\n{}", sshd.log()));
    stream
        .write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("the Engine API answers within 10 s")
        .unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn docker_stream_reaches_the_engine_api_over_a_forwarded_socket() {
    let sshd = start_sshd();
    let host = connect(&sshd).await;
    let response = ping_docker(&host, &sshd).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("OK"), "{response}");
}

#[tokio::test]
async fn docker_stream_falls_back_to_dial_stdio_when_forwarding_is_disabled() {
    let sshd = TestSshd::start_with_config(&["AllowStreamLocalForwarding no"]).unwrap();
    let host = connect(&sshd).await;
    for _ in 0..2 {
        let response = ping_docker(&host, &sshd).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    assert!(
        sshd.log().contains("refused"),
        "the forwarding was really refused:\n{}",
        sshd.log()
    );
}

#[tokio::test]
async fn a_failing_dial_stdio_reports_its_error_to_the_reader() {
    // No socket forwarding and no `docker` on the PATH: the stream must not end
    // silently but carry the shell's complaint.
    let sshd =
        TestSshd::start_with_config(&["AllowStreamLocalForwarding no", "SetEnv PATH=/nonexistent"])
            .unwrap();
    let host = connect(&sshd).await;
    let mut stream = host.docker_stream().await.unwrap();
    let _ = stream
        .write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
        .await;
    let mut response = Vec::new();
    let error = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("the stream ends within 10 s")
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("docker system dial-stdio"), "{message}");
    assert!(message.contains("not found"), "{message}");
}

#[tokio::test]
async fn connect_tcp_opens_a_stream_to_a_port_seen_from_the_host() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let echo = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buffer = [0u8; 5];
        socket.read_exact(&mut buffer).await.unwrap();
        socket.write_all(&buffer).await.unwrap();
    });
    let sshd = start_sshd();
    let host = connect(&sshd).await;
    let mut stream = host.connect_tcp("127.0.0.1", port).await.unwrap();
    stream.write_all(b"hello").await.unwrap();
    let mut answer = [0u8; 5];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&answer, b"hello");
    echo.await.unwrap();
}

// ---------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn read_files_reads_a_batch_and_reports_missing_files() {
    let sshd = start_sshd();
    let host = connect(&sshd).await;
    let directory = scratch_directory();
    let first = path_in(&directory, "first.yml");
    let binary = path_in(&directory, "binary");
    std::fs::write(&first, "entryPoints:\n  web: {}\n").unwrap();
    std::fs::write(&binary, b"\x00\xff\nno newline at the end").unwrap();
    let missing = path_in(&directory, "missing.yml");
    let contents = host
        .read_files(&[first.clone(), missing, binary.clone()])
        .await
        .unwrap();
    assert_eq!(
        contents,
        vec![
            Some(b"entryPoints:\n  web: {}\n".to_vec()),
            None,
            Some(b"\x00\xff\nno newline at the end".to_vec()),
        ]
    );
    assert_eq!(
        host.read_files(&[]).await.unwrap(),
        Vec::<Option<Vec<u8>>>::new()
    );
    // A directory is not a missing file: it is an error naming it.
    let error = host
        .read_files(&[directory.path().display().to_string()])
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains(&directory.path().display().to_string()),
        "{error}"
    );
}

#[tokio::test]
async fn list_files_names_the_files_of_a_directory_over_ssh_and_locally() {
    let sshd = start_sshd();
    let host = connect(&sshd).await;
    let directory = scratch_directory();
    std::fs::write(path_in(&directory, "route-web.yml"), "").unwrap();
    std::fs::write(path_in(&directory, "dropped by hand.yml"), "").unwrap();
    std::fs::create_dir(path_in(&directory, "nested")).unwrap();
    let listed = host
        .list_files(&directory.path().display().to_string())
        .await
        .unwrap();
    assert_eq!(listed, vec!["dropped by hand.yml", "route-web.yml"]);
    let local = stackctl_host::LocalHost::new()
        .list_files(&directory.path().display().to_string())
        .await
        .unwrap();
    assert_eq!(local, listed, "both transports list the same names");
    assert_eq!(
        host.list_files(&path_in(&directory, "missing"))
            .await
            .unwrap(),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn files_and_listings_are_read_in_one_command_over_ssh_as_locally() {
    let sshd = start_sshd();
    let host = connect(&sshd).await;
    let directory = scratch_directory();
    std::fs::write(path_in(&directory, "static.yml"), "entryPoints: {}\n").unwrap();
    std::fs::create_dir(path_in(&directory, "dynamic")).unwrap();
    std::fs::write(path_in(&directory, "dynamic/route-web.yml"), "").unwrap();
    std::fs::write(path_in(&directory, "dynamic/dropped by hand.yml"), "").unwrap();
    let paths = [
        path_in(&directory, "static.yml"),
        path_in(&directory, "missing.yml"),
    ];
    let directories = [
        path_in(&directory, "dynamic"),
        path_in(&directory, "no-such"),
    ];
    let read = host.read_and_list(&paths, &directories).await.unwrap();
    assert_eq!(
        read,
        (
            vec![Some(b"entryPoints: {}\n".to_vec()), None],
            vec![
                vec![
                    "dropped by hand.yml".to_string(),
                    "route-web.yml".to_string()
                ],
                Vec::new()
            ]
        )
    );
    let local = stackctl_host::LocalHost::new()
        .read_and_list(&paths, &directories)
        .await
        .unwrap();
    assert_eq!(local, read, "both transports read and list the same");
}

#[tokio::test]
async fn the_lock_reads_a_record_under_it_in_the_same_command() {
    let sshd = start_sshd();
    let host = connect(&sshd).await;
    let directory = scratch_directory();
    let lock = path_in(&directory, "shop.lock");
    let record = path_in(&directory, "shop.lineage");
    let (previous, read) = host.lock_reading(&lock, "holder 1", &record).await.unwrap();
    assert_eq!((previous, read), (None, None), "no record yet");
    host.unlock(&lock).await.unwrap();
    std::fs::write(&record, "lineage-1\n").unwrap();
    let (_, read) = host.lock_reading(&lock, "holder 1", &record).await.unwrap();
    assert_eq!(read.as_deref(), Some(&b"lineage-1\n"[..]));
    // Held: a second run is refused, naming the holder.
    let second = connect(&sshd).await;
    assert!(matches!(
        second.lock_reading(&lock, "holder 2", &record).await,
        Err(HostError::Locked { holder, .. }) if holder == "holder 1"
    ));
    host.unlock(&lock).await.unwrap();
}

#[tokio::test]
async fn write_file_goes_through_a_temporary_file_and_sets_the_mode() {
    let sshd = start_sshd();
    let host = connect(&sshd).await;
    let directory = scratch_directory();
    let temp_dir = path_in(&directory, "staging");
    let path = path_in(&directory, "traefik/dynamic/api.yml");
    host.write_file(&path, b"secret: 1\n", 0o600, &temp_dir)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"secret: 1\n");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    assert_eq!(
        std::fs::read_dir(&temp_dir).unwrap().count(),
        0,
        "the temporary was renamed away"
    );

    // Overwrite with a different mode: the rename replaces file and mode together.
    host.write_file(&path, b"secret: 2\n", 0o644, &temp_dir)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"secret: 2\n");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
        0o644
    );

    host.remove_file(&path).await.unwrap();
    assert!(!std::path::Path::new(&path).exists());
    host.remove_file(&path).await.unwrap();
}

#[tokio::test]
async fn large_contents_are_written_and_read_intact() {
    let sshd = start_sshd();
    let host = connect(&sshd).await;
    let directory = scratch_directory();
    let path = path_in(&directory, "large");
    let contents: Vec<u8> = (0..3_000_000u32).map(|index| (index % 251) as u8).collect();
    host.write_file(&path, &contents, 0o644, "/tmp")
        .await
        .unwrap();
    let read = host.read_files(&[path]).await.unwrap();
    assert_eq!(read, vec![Some(contents)]);
}

#[tokio::test]
async fn hostile_names_are_written_and_read_literally_and_never_run() {
    let pwned = std::path::Path::new("/tmp/pwned");
    let _ = std::fs::remove_file(pwned);
    let sshd = start_sshd();
    let host = connect(&sshd).await;
    let directory = scratch_directory();
    let hostile_names = [
        "$(touch /tmp/pwned)",
        "`touch /tmp/pwned`",
        "a; touch /tmp/pwned",
        "line\ntouch /tmp/pwned",
        "it's \"quoted\" $HOME",
        "-rf",
        "&& touch /tmp/pwned &",
    ];
    let mut paths = Vec::new();
    for name in hostile_names {
        let path = path_in(&directory, name);
        let value = format!("value of {name} $(touch /tmp/pwned)");
        host.write_file(
            &path,
            value.as_bytes(),
            0o644,
            &path_in(&directory, "tmp `x`"),
        )
        .await
        .unwrap_or_else(|error| panic!("{name:?}: {error}"));
        // The file exists under exactly that name on the host.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), value, "{name:?}");
        paths.push(path);
    }
    let read = host.read_files(&paths).await.unwrap();
    for (name, contents) in hostile_names.iter().zip(read) {
        assert_eq!(
            contents,
            Some(format!("value of {name} $(touch /tmp/pwned)").into_bytes())
        );
    }
    let lock = path_in(&directory, "$(touch /tmp/pwned).lock");
    host.lock(&lock, "`touch /tmp/pwned`").await.unwrap();
    host.unlock(&lock).await.unwrap();
    for path in &paths {
        host.remove_file(path).await.unwrap();
        assert!(!std::path::Path::new(path).exists());
    }
    assert!(!pwned.exists(), "a hostile name was executed");

    // NUL cannot be passed literally, so it is refused before anything runs.
    let error = host
        .write_file(&path_in(&directory, "nul\0name"), b"x", 0o644, "/tmp")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("NUL"), "{error}");
    assert!(host.read_files(&["a\0b".to_string()]).await.is_err());
    assert!(host.lock("a\0b", "x").await.is_err());
}

// ---------------------------------------------------------------------------------
// Lock
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_held_lock_refuses_a_second_holder_and_names_the_first() {
    let sshd = start_sshd();
    let first = connect(&sshd).await;
    let second = connect(&sshd).await;
    let directory = scratch_directory();
    let lock = path_in(&directory, "locks/shop.lock");
    let details = "alice@laptop pid 4242 `stackctl apply` since 2026-05-02T10:14:03Z";
    assert_eq!(first.lock(&lock, details).await.unwrap(), None);
    match second.lock(&lock, "bob@desk pid 7").await.unwrap_err() {
        HostError::Locked { path, holder } => {
            assert_eq!(path, lock);
            assert_eq!(holder, details);
        }
        other => panic!("expected the lock to be held, got {other:?}"),
    }
    // `state unlock --host` never breaks a live run's lock.
    assert!(matches!(
        second.unlock(&lock).await,
        Err(HostError::Locked { .. })
    ));
    assert_eq!(first.unlock(&lock).await.unwrap(), Unlocked::Released);
    assert!(
        !std::path::Path::new(&format!("{lock}.holder")).exists(),
        "a clean release leaves no details behind"
    );
    assert_eq!(second.lock(&lock, "bob@desk pid 7").await.unwrap(), None);
    assert_eq!(second.unlock(&lock).await.unwrap(), Unlocked::Released);
    // Unlocking what is not locked is fine.
    assert_eq!(second.unlock(&lock).await.unwrap(), Unlocked::NotHeld);
}

/// The lock dies with the SSH session that holds it: when the connection ends without
/// an unlock (stackctl killed with -9, the network cut), the next run takes it with no
/// manual step and is told whose lock it took over.
#[tokio::test]
async fn a_lock_whose_ssh_session_ended_is_taken_over_without_a_manual_step() {
    let sshd = start_sshd();
    let directory = scratch_directory();
    let lock = path_in(&directory, "locks/shop.lock");
    let alice = connect(&sshd).await;
    alice.lock(&lock, "alice@laptop pid 4242").await.unwrap();
    let bob = connect(&sshd).await;
    assert!(matches!(
        bob.lock(&lock, "bob@desk pid 7").await,
        Err(HostError::Locked { .. })
    ));

    // Alice's connection goes away without a word.
    drop(alice);
    let deadline = Instant::now() + Duration::from_secs(10);
    let previous_holder = loop {
        match bob.lock(&lock, "bob@desk pid 7").await {
            Ok(previous_holder) => break previous_holder,
            Err(HostError::Locked { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(other) => panic!(
                "the lock was not released within 10 s: {other}\n{}",
                sshd.log()
            ),
        }
    };
    assert_eq!(previous_holder.as_deref(), Some("alice@laptop pid 4242"));
    assert_eq!(bob.unlock(&lock).await.unwrap(), Unlocked::Released);

    // A gone holder's details can also be cleared by hand (`state unlock --host`), which
    // says whose they were: the lock itself needed nothing.
    let carol = connect(&sshd).await;
    carol.lock(&lock, "carol@ci pid 9").await.unwrap();
    drop(carol);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match bob.unlock(&lock).await {
            Ok(unlocked) => {
                assert_eq!(
                    unlocked,
                    Unlocked::ClearedStaleDetails {
                        holder: "carol@ci pid 9".into()
                    }
                );
                break;
            }
            Err(HostError::Locked { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(other) => panic!("{other}"),
        }
    }
}

#[tokio::test]
async fn racing_lockers_get_exactly_one_lock() {
    let sshd = start_sshd();
    let host = Arc::new(connect(&sshd).await);
    let directory = scratch_directory();
    let lock = path_in(&directory, "race.lock");
    let mut tasks = Vec::new();
    for index in 0..6 {
        let host = host.clone();
        let lock = lock.clone();
        tasks.push(tokio::spawn(async move {
            host.lock(&lock, &format!("holder {index}")).await
        }));
    }
    let mut winners = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => winners += 1,
            Err(HostError::Locked { .. }) => {}
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(winners, 1);
}
