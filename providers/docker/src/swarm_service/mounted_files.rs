//! `[files]` entries as Swarm configs — or Swarm secrets, when the content holds a secret —
//! mounted in every task where the service bind-mounts them on one host.
//!
//! On a swarm, a file stackctl writes exists on the first manager alone, so a bind mount
//! of it would pin the service there. Lowering turns the bind mount of a `[files]` entry
//! into the attribute `configs` (path in the task → `{ name, owner, mode }`), or
//! `secret_files` (the same, and `content`: the secret) for a file holding a secret. The
//! name (`<stack>_<service>_<file>_<8 hex>`) ends with the first 8 hex digits of the
//! content's sha256 (a secret's: its salted digest, as state records it). Swarm never
//! changes a config or secret, so a new content is a new object, the service's spec
//! changes, and it rolls out (or switches, when routed) like any other change; the old one
//! goes once nothing uses it ([`super::swarm_objects`]).
//!
//! A config's content is not an attribute of the service: `file.<name>` records it, and
//! the plan shows its diff there. An apply that must create a config finds the content
//! among the `[files]` resources recorded so far in the run (the service depends on the
//! file, which is applied first): the one whose sha256 starts with the name's 8 hex digits.
//! So the service's state never holds a second copy of the content. A secret file's
//! content travels as a secret, like a secret env value: the plaintext in the run's
//! memory for the apply, its salted digest in state and plans (`(sensitive value
//! changed)`, beside the file's own), and Docker never shows it (`docker secret inspect`
//! has no data; a config's it has, which is why a secret is not a config).

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};
use stackctl_provider::{Address, Attributes, Secret, Value};

use super::swarm_objects::WantedObject;

/// The attribute of the files mounted as Swarm configs: path in the task →
/// `{ name, owner, mode }`.
pub const CONFIGS: &str = "configs";
/// The attribute of the files mounted as Swarm secrets: path in the task →
/// `{ name, owner, mode, content }`.
pub const SECRET_FILES: &str = "secret_files";

/// One `[files]` entry as the Swarm config or secret mounted at `target`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountedFile {
    /// The path in the task (`/etc/app.conf`).
    pub target: String,
    /// The Swarm object's name, ending in the content's 8 hex digits.
    pub name: String,
    pub uid: String,
    pub gid: String,
    pub mode: u32,
    /// A secret file's content; `None` for a config (its content is `file.<name>`'s).
    pub secret: Option<Secret>,
}

impl MountedFile {
    /// The entry of `TaskTemplate.ContainerSpec.Configs` (or `Secrets`, for a secret file)
    /// mounting the object `id`.
    pub fn reference(&self, id: &str) -> Json {
        let file =
            json!({ "Name": self.target, "UID": self.uid, "GID": self.gid, "Mode": self.mode });
        if self.secret.is_some() {
            json!({ "File": file, "SecretID": id, "SecretName": self.name })
        } else {
            json!({ "File": file, "ConfigID": id, "ConfigName": self.name })
        }
    }

    /// The object an apply makes when it does not exist yet: a secret's content is its
    /// own; a config's is found among the recorded `[files]` resources (see the module's
    /// essay).
    pub fn wanted(&self, recorded: &BTreeMap<Address, Attributes>) -> WantedObject {
        let data = match &self.secret {
            Some(secret) => secret
                .expose()
                .map(|plaintext| plaintext.as_bytes().to_vec())
                .ok_or_else(|| "the content is not available to this run".to_string()),
            None => content_for(&self.name, recorded)
                .map(|content| content.as_bytes().to_vec())
                .ok_or_else(|| {
                    format!(
                        "no `[files]` entry recorded in this run has the content whose sha256 starts with `{}`",
                        content_digest_prefix(&self.name)
                    )
                }),
        };
        WantedObject {
            name: self.name.clone(),
            carries: format!("file `{}`", self.target),
            data,
        }
    }
}

/// Why the `configs` attribute cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{attribute}.{target}`: {why}")]
pub struct MountedFileError {
    pub attribute: &'static str,
    pub target: String,
    pub why: String,
}

/// Reads the `configs` or `secret_files` attribute (absent: none).
pub fn mounted_files(
    attribute: &'static str,
    value: Option<&Value>,
) -> Result<Vec<MountedFile>, MountedFileError> {
    let Some(entries) = value.and_then(Value::as_map) else {
        return Ok(Vec::new());
    };
    let mut files = Vec::new();
    for (target, entry) in entries {
        let error = |why: &str| MountedFileError {
            attribute,
            target: target.clone(),
            why: why.to_string(),
        };
        let field = |name: &str| {
            entry
                .as_map()
                .and_then(|entry| entry.get(name))
                .and_then(Value::as_text)
        };
        let name = field("name").ok_or_else(|| error("no `name`"))?;
        let (uid, gid) = field("owner")
            .unwrap_or("0:0")
            .split_once(':')
            .ok_or_else(|| error("`owner` is not `UID:GID`"))?;
        let mode = field("mode")
            .map(|mode| u32::from_str_radix(mode, 8))
            .unwrap_or(Ok(0o444))
            .map_err(|_| error("`mode` is not octal"))?;
        let secret = match entry.as_map().and_then(|entry| entry.get("content")) {
            Some(Value::Secret(secret)) => Some(secret.clone()),
            Some(_) => return Err(error("`content` is not a secret")),
            None if attribute == SECRET_FILES => return Err(error("no `content`")),
            None => None,
        };
        files.push(MountedFile {
            target: target.clone(),
            name: secret
                .as_ref()
                .map_or_else(|| name.to_string(), |secret| named_after(name, secret)),
            uid: uid.to_string(),
            gid: gid.to_string(),
            mode,
            secret,
        });
    }
    Ok(files)
}

/// A secret file's name with the 8 hex digits of the secret it carries. They are the same
/// but where a secret was put in from elsewhere (a rollback takes today's secrets into an
/// older entry): a name must never say another content than the one it carries.
fn named_after(name: &str, secret: &Secret) -> String {
    let prefix = super::secrets::digest_prefix(secret.digest());
    match name.rsplit_once('_') {
        Some((_, digits)) if digits == prefix => name.to_string(),
        Some((base, _)) => format!("{base}_{prefix}"),
        None => format!("{name}_{prefix}"),
    }
}

/// `shop_web_app_1a2b3c4d` → `1a2b3c4d`.
pub fn content_digest_prefix(name: &str) -> &str {
    name.rsplit('_').next().unwrap_or("")
}

/// The content of the recorded `file.*` resource whose sha256 starts with the 8 hex
/// digits `name` ends with.
pub fn content_for<'a>(name: &str, recorded: &'a BTreeMap<Address, Attributes>) -> Option<&'a str> {
    let prefix = format!("sha256:{}", content_digest_prefix(name));
    if prefix.len() != "sha256:".len() + 8 {
        return None;
    }
    recorded
        .iter()
        .filter(|(address, _)| address.kind() == "file")
        .filter_map(|(_, attributes)| attributes.get("content")?.as_text())
        .find(|content| stackctl_provider::sha256_hex(content.as_bytes()).starts_with(&prefix))
}

/// The configs a live service's spec mounts (`ContainerSpec.Configs`), in the attribute's
/// shape: path → `{ name, owner, mode }`.
pub fn live_configs(container: &Json) -> BTreeMap<String, Value> {
    live_mounts(&container["Configs"], "ConfigName")
}

/// The secrets a live service's spec mounts at a path other than `skipped` (the env's
/// secrets, `/run/secrets/VAR`), as `secret_files` entries: a secret whose name ends with
/// the recorded content's 8 hex digits reads back as that content (its digest); any other
/// as a digest no content has, so the plan shows a changed secret.
pub fn live_secret_files(
    container: &Json,
    skipped: &[String],
    reference: Option<&Value>,
    salt: &str,
) -> BTreeMap<String, Value> {
    let recorded = reference.and_then(Value::as_map);
    let mut files = live_mounts(&container["Secrets"], "SecretName");
    files.retain(|target, _| !skipped.contains(target));
    for (target, entry) in files.iter_mut() {
        let Value::Map(entry) = entry else { continue };
        let name = entry
            .get("name")
            .and_then(Value::as_text)
            .unwrap_or("")
            .to_string();
        let recorded_secret = recorded
            .and_then(|files| files.get(target))
            .and_then(Value::as_map)
            .and_then(|file| file.get("content"));
        let content = match recorded_secret {
            Some(Value::Secret(secret))
                if name.ends_with(&format!(
                    "_{}",
                    super::secrets::digest_prefix(secret.digest())
                )) =>
            {
                Secret::from_digest(secret.digest())
            }
            _ => Secret::from_digest(Secret::digest_of(&format!("swarm secret {name}"), salt)),
        };
        entry.insert("content".to_string(), Value::Secret(content));
    }
    files
}

/// Mounted objects (`Configs` or `Secrets` of a container spec) by path: name, owner, mode.
fn live_mounts(references: &Json, name_field: &str) -> BTreeMap<String, Value> {
    references
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|reference| {
            let file = &reference["File"];
            let entry = BTreeMap::from([
                (
                    "name".to_string(),
                    Value::text(reference[name_field].as_str()?),
                ),
                (
                    "owner".to_string(),
                    Value::text(format!(
                        "{}:{}",
                        file["UID"].as_str().unwrap_or("0"),
                        file["GID"].as_str().unwrap_or("0")
                    )),
                ),
                (
                    "mode".to_string(),
                    Value::text(format!("{:04o}", file["Mode"].as_u64().unwrap_or(0o444))),
                ),
            ]);
            Some((file["Name"].as_str()?.to_string(), Value::Map(entry)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attribute(name: &str) -> Value {
        Value::Map(BTreeMap::from([(
            "/etc/app.conf".to_string(),
            Value::Map(BTreeMap::from([
                ("name".to_string(), Value::text(name)),
                ("owner".to_string(), Value::text("10001:10001")),
                ("mode".to_string(), Value::text("0440")),
            ])),
        )]))
    }

    fn recorded_file(content: &str) -> (Address, Attributes) {
        (
            Address::new("file", "app"),
            Attributes::from([("content".to_string(), Value::text(content))]),
        )
    }

    #[test]
    fn a_config_is_mounted_at_the_path_with_its_owner_and_mode() {
        let files = mounted_files(CONFIGS, Some(&attribute("shop_web_app_1a2b3c4d"))).unwrap();
        assert_eq!(
            files,
            [MountedFile {
                target: "/etc/app.conf".into(),
                name: "shop_web_app_1a2b3c4d".into(),
                uid: "10001".into(),
                gid: "10001".into(),
                mode: 0o440,
                secret: None,
            }]
        );
        assert_eq!(
            files[0].reference("cid"),
            json!({
                "File": { "Name": "/etc/app.conf", "UID": "10001", "GID": "10001", "Mode": 0o440 },
                "ConfigID": "cid",
                "ConfigName": "shop_web_app_1a2b3c4d",
            })
        );
        assert_eq!(mounted_files(CONFIGS, None).unwrap(), []);
    }

    #[test]
    fn a_bad_owner_or_mode_is_named() {
        let mut bad = attribute("n_1a2b3c4d");
        if let Value::Map(entries) = &mut bad {
            if let Some(Value::Map(entry)) = entries.get_mut("/etc/app.conf") {
                entry.insert("owner".into(), Value::text("root"));
            }
        }
        assert_eq!(
            mounted_files(CONFIGS, Some(&bad)).unwrap_err().to_string(),
            "`configs./etc/app.conf`: `owner` is not `UID:GID`"
        );
    }

    #[test]
    fn the_content_is_the_recorded_file_whose_digest_the_name_ends_with() {
        let content = "greeting = hello\n";
        let digest = stackctl_provider::sha256_hex(content.as_bytes());
        let name = format!("shop_web_app_{}", &digest[7..15]);
        let recorded = BTreeMap::from([
            recorded_file(content),
            (
                Address::new("file", "other"),
                Attributes::from([("content".to_string(), Value::text("other"))]),
            ),
            // Not a file: never a config's content, whatever it holds.
            (
                Address::new("route", "web"),
                Attributes::from([("content".to_string(), Value::text(content))]),
            ),
        ]);
        assert_eq!(content_for(&name, &recorded), Some(content));
        let config = mounted_files(CONFIGS, Some(&attribute(&name)))
            .unwrap()
            .remove(0);
        assert_eq!(config.wanted(&recorded).data.unwrap(), content.as_bytes());
        // Another content: not found, and the apply says so rather than guess.
        let missing = mounted_files(CONFIGS, Some(&attribute("shop_web_app_00000000")))
            .unwrap()
            .remove(0)
            .wanted(&recorded);
        assert!(missing.data.unwrap_err().contains("`00000000`"));
        assert_eq!(content_for("no-digest", &recorded), None);
    }

    #[test]
    fn a_live_spec_reads_back_in_the_attributes_shape() {
        let config = mounted_files(CONFIGS, Some(&attribute("shop_web_app_1a2b3c4d")))
            .unwrap()
            .remove(0);
        let container = json!({ "Configs": [config.reference("cid")] });
        assert_eq!(
            Value::Map(live_configs(&container)),
            attribute("shop_web_app_1a2b3c4d")
        );
        assert!(live_configs(&json!({})).is_empty());
    }

    #[test]
    fn a_secret_file_is_mounted_as_a_swarm_secret_and_reads_back_by_its_digest() {
        let secret = Secret::new("-----BEGIN KEY-----", "salt");
        let name = format!("shop_web_key_{}", &secret.digest()[7..15]);
        let mut attribute = attribute(&name);
        if let Value::Map(entries) = &mut attribute {
            if let Some(Value::Map(entry)) = entries.get_mut("/etc/app.conf") {
                entry.insert("content".into(), Value::Secret(secret.clone()));
            }
        }
        let file = mounted_files(SECRET_FILES, Some(&attribute))
            .unwrap()
            .remove(0);
        assert_eq!(
            file.reference("sid"),
            json!({
                "File": { "Name": "/etc/app.conf", "UID": "10001", "GID": "10001", "Mode": 0o440 },
                "SecretID": "sid",
                "SecretName": name,
            })
        );
        assert_eq!(
            file.wanted(&BTreeMap::new()).data.unwrap(),
            b"-----BEGIN KEY-----"
        );
        assert!(!format!("{:?}", file).contains("BEGIN KEY"));
        // Read back: the env's secret at /run/secrets/X is not a file; this one is, with
        // the recorded content's digest while its name says that content.
        let container = json!({ "Secrets": [
            file.reference("sid"),
            { "File": { "Name": "/run/secrets/X", "UID": "0", "GID": "0", "Mode": 0o444 }, "SecretName": "shop_web_X_00000000" },
        ] });
        let live = live_secret_files(
            &container,
            &["/run/secrets/X".to_string()],
            Some(&attribute),
            "salt",
        );
        assert_eq!(Value::Map(live), attribute);
        // Another secret mounted there: another content.
        let mut swapped = container.clone();
        swapped["Secrets"][0]["SecretName"] = json!("shop_web_key_00000000");
        let live = live_secret_files(&swapped, &[], Some(&attribute), "salt");
        assert_ne!(
            live["/etc/app.conf"].as_map().unwrap()["content"],
            Value::Secret(secret)
        );
        // A secret taken from elsewhere (a rollback's today's value): the name follows it.
        let mut elsewhere = attribute.clone();
        if let Value::Map(entries) = &mut elsewhere {
            if let Some(Value::Map(entry)) = entries.get_mut("/etc/app.conf") {
                entry.insert(
                    "content".into(),
                    Value::Secret(Secret::new("today", "salt")),
                );
            }
        }
        let renamed = mounted_files(SECRET_FILES, Some(&elsewhere))
            .unwrap()
            .remove(0);
        assert_eq!(
            renamed.name,
            format!(
                "shop_web_key_{}",
                &Secret::digest_of("today", "salt")[7..15]
            )
        );
        // A secret file needs its content.
        assert!(mounted_files(SECRET_FILES, Some(&super::tests::attribute("n_1a2b3c4d"))).is_err());
    }
}
