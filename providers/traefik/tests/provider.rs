//! The provider against the local host (files in a temp dir), without Traefik.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use common::*;
use stackctl_host::{Host, HostConnector, SshOptions, Target};
use stackctl_provider::{
    Action, ActionKind, ApplyContext, ApplyOutcome, Provider, ProviderError, ReadRequest, Reason,
    RecordedResource, Resource, Secret, Value,
};
use stackctl_traefik::TraefikProvider;

fn provider() -> TraefikProvider {
    TraefikProvider::new(Arc::new(HostConnector::local()), STACK)
}

fn context() -> ApplyContext {
    ApplyContext {
        stack: STACK.into(),
        lineage: "lineage-of-the-test".into(),
        state_was_empty: true,
        salt: SALT.into(),
        health_timeout: Duration::from_secs(5),
        allow_data_loss: false,
        recorded: Arc::new(RwLock::new(BTreeMap::new())),
    }
}

fn action(kind: ActionKind, desired: Option<Resource>, prior: Option<RecordedResource>) -> Action {
    let address = desired
        .as_ref()
        .map(|resource| resource.address.clone())
        .or_else(|| prior.as_ref().map(|recorded| recorded.address.clone()))
        .expect("a resource");
    Action {
        address,
        provider: "traefik".into(),
        kind,
        reason: Reason::New,
        changes: Vec::new(),
        depends_on: Vec::new(),
        desired,
        prior,
        live_id: None,
    }
}

fn prepared(mut resource: Resource) -> Resource {
    provider().prepare(&mut resource).expect("prepare");
    resource
}

async fn recorded(action: Action) -> RecordedResource {
    match provider().apply(&action, &context()).await.expect("apply") {
        ApplyOutcome::Recorded(recorded) => recorded,
        ApplyOutcome::Deleted => panic!("unexpected delete"),
    }
}

fn request(desired: Vec<Resource>, recorded: Vec<RecordedResource>) -> ReadRequest {
    ReadRequest {
        stack: STACK.into(),
        salt: SALT.into(),
        desired,
        recorded,
    }
}

#[tokio::test]
async fn create_writes_through_the_temp_dir_and_read_finds_it_unchanged() {
    let directory = tempfile::tempdir().expect("temp dir");
    let root = directory.path().to_string_lossy().into_owned();
    let file = prepared(static_file(&root));
    let route = prepared(route(&root, "api", "Host(`example.test`)", "api", &[]));
    let mut records = Vec::new();
    for resource in [&file, &route] {
        records.push(recorded(action(ActionKind::Create, Some(resource.clone()), None)).await);
    }
    assert_eq!(
        records[0].id.as_deref(),
        Some(format!("{root}/traefik/traefik.yml").as_str())
    );
    let on_disk =
        std::fs::read_to_string(format!("{root}/traefik/traefik.yml")).expect("static file");
    assert_eq!(Some(&Value::Text(on_disk)), file.attributes.get("content"));
    assert!(std::path::Path::new(&format!("{root}/traefik/dynamic/tls-options.yml")).exists());
    assert_eq!(
        std::fs::read_dir(format!("{root}/traefik/.tmp"))
            .expect("temp dir")
            .count(),
        0
    );

    let live = provider()
        .read(&request(vec![file.clone(), route.clone()], records.clone()))
        .await
        .expect("read");
    assert_eq!(live.len(), 2);
    for (found, record) in live.iter().zip(&records) {
        assert!(found.owned);
        assert_eq!(
            found.attributes, record.attributes,
            "{} matches what was recorded",
            found.address
        );
    }
}

#[tokio::test]
async fn a_missing_file_is_not_live_and_a_foreign_file_is_not_owned() {
    let directory = tempfile::tempdir().expect("temp dir");
    let root = directory.path().to_string_lossy().into_owned();
    let route = prepared(route(&root, "api", "Host(`example.test`)", "api", &[]));
    let live = provider()
        .read(&request(vec![route.clone()], vec![]))
        .await
        .expect("read");
    assert!(live.is_empty());

    std::fs::create_dir_all(format!("{root}/traefik/dynamic")).expect("mkdir");
    std::fs::write(
        format!("{root}/traefik/dynamic/route-api.yml"),
        "http: {}\n",
    )
    .expect("write");
    let live = provider()
        .read(&request(vec![route], vec![]))
        .await
        .expect("read");
    assert_eq!(live.len(), 1);
    assert!(
        !live[0].owned,
        "a file without stackctl's header is not ours to adopt"
    );
}

#[tokio::test]
async fn moving_a_file_removes_the_old_one_and_delete_removes_every_file() {
    let directory = tempfile::tempdir().expect("temp dir");
    let root = directory.path().to_string_lossy().into_owned();
    let file = prepared(static_file(&root));
    let first = recorded(action(ActionKind::Create, Some(file.clone()), None)).await;

    let mut moved = static_file(&root);
    moved.attributes.insert(
        "path".into(),
        Value::text(format!("{root}/edge/traefik.yml")),
    );
    moved.attributes.insert(
        "tls_path".into(),
        Value::text(format!("{root}/edge/dynamic/tls.yml")),
    );
    let moved = prepared(moved);
    let second = recorded(action(ActionKind::Update, Some(moved), Some(first))).await;
    assert!(!std::path::Path::new(&format!("{root}/traefik/traefik.yml")).exists());
    assert!(!std::path::Path::new(&format!("{root}/traefik/dynamic/tls-options.yml")).exists());
    assert!(std::path::Path::new(&format!("{root}/edge/dynamic/tls.yml")).exists());

    let outcome = provider()
        .apply(&action(ActionKind::Delete, None, Some(second)), &context())
        .await
        .expect("delete");
    assert_eq!(outcome, ApplyOutcome::Deleted);
    assert!(!std::path::Path::new(&format!("{root}/edge/traefik.yml")).exists());
    assert!(!std::path::Path::new(&format!("{root}/edge/dynamic/tls.yml")).exists());
}

#[tokio::test]
async fn apply_refuses_bytes_that_differ_from_the_plan() {
    let directory = tempfile::tempdir().expect("temp dir");
    let root = directory.path().to_string_lossy().into_owned();
    let mut route = prepared(route(&root, "api", "Host(`example.test`)", "api", &[]));
    route
        .attributes
        .insert("content".into(), Value::text("# something else\n"));
    let error = provider()
        .apply(&action(ActionKind::Create, Some(route), None), &context())
        .await
        .expect_err("must refuse");
    assert!(
        error
            .to_string()
            .contains("differs from the one in the plan"),
        "{error}"
    );
    assert!(!std::path::Path::new(&format!("{root}/traefik/dynamic/route-api.yml")).exists());
}

/// Adoption records what stack.toml renders, so the host must hold those bytes: a file
/// that is the same is left alone, one that differs or is missing (a lost state, a crash)
/// is written, and one apply converges (issue 9).
#[tokio::test]
async fn adopt_writes_only_the_files_that_differ_on_the_host() {
    let directory = tempfile::tempdir().expect("temp dir");
    let root = directory.path().to_string_lossy().into_owned();
    let path = format!("{root}/traefik/dynamic/route-api.yml");
    let route = prepared(route(&root, "api", "Host(`example.test`)", "api", &[]));
    let rendered = route.attributes["content"].as_text().unwrap().to_string();

    // Missing: written.
    let record = recorded(action(ActionKind::Adopt, Some(route.clone()), None)).await;
    assert_eq!(record.hash, route.hash());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), rendered);

    // The same: not touched (same inode: no rename over it).
    use std::os::unix::fs::MetadataExt;
    let before = std::fs::metadata(&path).unwrap().ino();
    recorded(action(ActionKind::Adopt, Some(route.clone()), None)).await;
    assert_eq!(std::fs::metadata(&path).unwrap().ino(), before);

    // Different: written again.
    std::fs::write(&path, "# edited by hand\n").unwrap();
    recorded(action(ActionKind::Adopt, Some(route.clone()), None)).await;
    assert_eq!(std::fs::read_to_string(&path).unwrap(), rendered);
}

#[test]
fn a_password_known_only_by_digest_cannot_be_rendered() {
    let mut auth = middleware(
        "/srv",
        "auth",
        "basic_auth",
        map(&[(
            "users",
            map(&[("admin", Value::Secret(Secret::from_digest("sha256:00")))]),
        )]),
    );
    let error = provider().prepare(&mut auth).expect_err("no plaintext");
    assert!(
        error.to_string().contains("known only by its digest"),
        "{error}"
    );
}

#[tokio::test]
async fn reading_nothing_does_not_connect_and_an_unreachable_droplet_is_reported() {
    let target = Target::Droplet {
        droplet: "web-1".into(),
        options: SshOptions::default(),
    };
    let provider = TraefikProvider::new(Arc::new(HostConnector::new(target)), STACK);
    let live = provider
        .read(&request(vec![], vec![]))
        .await
        .expect("nothing to read");
    assert!(live.is_empty());

    let route = prepared(route("/srv", "api", "Host(`example.test`)", "api", &[]));
    match provider.read(&request(vec![route], vec![])).await {
        Err(ProviderError::Unreachable { target, .. }) => {
            assert!(target.contains("web-1"), "{target}")
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn files_change_only_under_the_host_lock_shared_with_the_docker_provider() {
    // Another run on this machine holds the stack's lock (keyed on the stack, wherever
    // its root is).
    let alice = stackctl_host::LocalHost::new();
    let lock = stackctl_host::host_lock_path(STACK);
    alice
        .lock(&lock, "{\"who\": \"alice@laptop\"}\n")
        .await
        .unwrap();
    let connector = Arc::new(HostConnector::local());
    let provider = TraefikProvider::new(connector.clone(), STACK);
    let refused = provider.begin_apply(&context()).await.unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("another apply holds the host lock"),
        "{refused}"
    );
    assert!(
        format!("{refused:?}").contains("alice@laptop"),
        "the holder is named: {refused:?}"
    );

    alice.unlock(&lock).await.unwrap();
    provider.begin_apply(&context()).await.unwrap();
    // Another run (its own connection) is refused while this one holds the lock.
    let other_run = TraefikProvider::new(Arc::new(HostConnector::local()), STACK);
    assert!(
        other_run.begin_apply(&context()).await.is_err(),
        "the lock is held during the run"
    );
    // A second provider on the same connection shares the run's lock instead of tripping on it.
    let sibling = TraefikProvider::new(connector, STACK);
    sibling.begin_apply(&context()).await.unwrap();
    provider.end_apply(&context()).await.unwrap();
    other_run
        .begin_apply(&context())
        .await
        .expect("released at the end of the run");
    other_run.end_apply(&context()).await.unwrap();
}

#[tokio::test]
async fn a_basic_auth_file_takes_its_hashes_from_the_host_only_when_it_is_the_recorded_file() {
    let directory = tempfile::tempdir().expect("temp dir");
    let root = directory.path().to_string_lossy().into_owned();
    let users = |password: &str| map(&[("users", map(&[("admin", secret(password))]))]);
    let auth = middleware(&root, "auth", "basic_auth", users("correct horse"));
    let path = format!("{root}/traefik/dynamic/middleware-auth.yml");

    // It waits for the refresh, but its settings are checked at once.
    assert!(provider().prepare_waits_for_refresh(&auth).unwrap());
    let too_long = middleware(&root, "auth", "basic_auth", users(&"x".repeat(80)));
    let error = provider()
        .prepare_waits_for_refresh(&too_long)
        .expect_err("over bcrypt's 72 bytes");
    assert!(error.to_string().contains("72 bytes"), "{error}");
    let route = route(&root, "api", "Host(`example.test`)", "api", &[]);
    assert!(!provider().prepare_waits_for_refresh(&route).unwrap());

    // Applied as `prepare` renders it (bcrypt), then read back.
    let computed = prepared(auth.clone());
    let record = recorded(action(ActionKind::Create, Some(computed.clone()), None)).await;
    let read_back = |record: RecordedResource| {
        let auth = auth.clone();
        async move {
            provider()
                .read(&request(vec![auth], vec![record]))
                .await
                .expect("read")
                .remove(0)
        }
    };
    let live = read_back(record.clone()).await;
    let mut taken = auth.clone();
    provider()
        .prepare_with_live(&mut taken, Some(&live), Some(&record))
        .unwrap();
    assert_eq!(taken.attributes["content"], computed.attributes["content"]);
    assert_eq!(taken.hash(), computed.hash());
    let text = |resource: &Resource| match &resource.attributes["content"] {
        Value::Secret(secret) => secret.expose().expect("plaintext").to_string(),
        other => panic!("not a secret: {other:?}"),
    };
    assert_eq!(text(&taken), text(&computed));

    // The hashes come from the host, trusted because the file is the recorded one: a file
    // with another hash that state recorded as such keeps that hash…
    let real_hash = text(&computed)
        .lines()
        .find_map(|line| {
            line.split_once("admin:")
                .map(|(_, hash)| hash.trim_end_matches('"').to_string())
        })
        .expect("the admin line");
    let other_hash = format!("$2y$10${}", "a".repeat(53));
    std::fs::write(&path, text(&computed).replace(&real_hash, &other_hash)).unwrap();
    let edited = read_back(record.clone()).await;
    let mut recorded_edit = record.clone();
    recorded_edit
        .attributes
        .insert("content".into(), edited.attributes["content"].clone());
    let mut from_host = auth.clone();
    provider()
        .prepare_with_live(&mut from_host, Some(&edited), Some(&recorded_edit))
        .unwrap();
    assert!(text(&from_host).contains(&other_hash));

    // …while the same file edited behind stackctl's back is not trusted: the hash is
    // computed, and the plan will show the file as drift to repair.
    let mut recomputed = auth.clone();
    provider()
        .prepare_with_live(&mut recomputed, Some(&edited), Some(&record))
        .unwrap();
    assert_eq!(text(&recomputed), text(&computed));

    // Another password: computed, whatever the host holds.
    let changed = middleware(&root, "auth", "basic_auth", users("battery staple"));
    let mut changed_prepared = changed.clone();
    provider()
        .prepare_with_live(&mut changed_prepared, Some(&live), Some(&record))
        .unwrap();
    assert_eq!(changed_prepared.hash(), prepared(changed).hash());
    assert_ne!(changed_prepared.hash(), computed.hash());

    // No refresh: computed.
    let mut offline = auth.clone();
    provider()
        .prepare_with_live(&mut offline, None, None)
        .unwrap();
    assert_eq!(offline.hash(), computed.hash());
}
