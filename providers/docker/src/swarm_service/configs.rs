//! `[files]` entries as Swarm configs, mounted in every task where the service
//! bind-mounts them on one host.
//!
//! On a swarm, a file stackctl writes exists on the first manager alone, so a bind mount
//! of it would pin the service there. Lowering turns the bind mount of a `[files]` entry
//! whose content holds no secret into the attribute `configs`: the path in the task →
//! `{ name, owner, mode }`, where the name (`<stack>_<service>_<file>_<8 hex>`) ends with
//! the first 8 hex digits of the content's sha256. Swarm's configs cannot change, so a new
//! content is a new config, the service's spec changes, and it rolls out (or switches,
//! when routed) like any other change; the old config goes once nothing uses it
//! ([`super::swarm_objects`]).
//!
//! The content itself is not an attribute of the service: `file.<name>` records it, and
//! the plan shows its diff there. An apply that must create a config finds the content
//! among the `[files]` resources recorded so far in the run (the service depends on the
//! file, which is applied first): the one whose sha256 starts with the name's 8 hex digits.
//! So the service's state never holds a second copy of the content.

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};
use stackctl_provider::{Address, Attributes, Value};

use super::swarm_objects::WantedObject;

/// The attribute: path in the task → `{ name, owner, mode }`.
pub const CONFIGS: &str = "configs";

/// One `[files]` entry as the Swarm config mounted at `target`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigFile {
    /// The path in the task (`/etc/app.conf`).
    pub target: String,
    /// The Swarm config's name, ending in the content's 8 hex digits.
    pub name: String,
    pub uid: String,
    pub gid: String,
    pub mode: u32,
}

impl ConfigFile {
    /// The entry of `TaskTemplate.ContainerSpec.Configs` mounting the config `id`.
    pub fn reference(&self, id: &str) -> Json {
        json!({
            "File": { "Name": self.target, "UID": self.uid, "GID": self.gid, "Mode": self.mode },
            "ConfigID": id,
            "ConfigName": self.name,
        })
    }

    /// The config as the object an apply makes when it does not exist yet, its content
    /// found among the recorded `[files]` resources (see the module's essay).
    pub fn wanted(&self, recorded: &BTreeMap<Address, Attributes>) -> WantedObject {
        WantedObject {
            name: self.name.clone(),
            carries: format!("file `{}`", self.target),
            data: content_for(&self.name, recorded)
                .map(|content| content.as_bytes().to_vec())
                .ok_or_else(|| {
                    format!(
                        "no `[files]` entry recorded in this run has the content whose sha256 starts with `{}`",
                        content_digest_prefix(&self.name)
                    )
                }),
        }
    }
}

/// Why the `configs` attribute cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`configs.{target}`: {why}")]
pub struct ConfigError {
    pub target: String,
    pub why: String,
}

/// Reads the `configs` attribute (absent: none).
pub fn config_files(value: Option<&Value>) -> Result<Vec<ConfigFile>, ConfigError> {
    let Some(entries) = value.and_then(Value::as_map) else {
        return Ok(Vec::new());
    };
    let mut files = Vec::new();
    for (target, entry) in entries {
        let error = |why: &str| ConfigError {
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
        files.push(ConfigFile {
            target: target.clone(),
            name: name.to_string(),
            uid: uid.to_string(),
            gid: gid.to_string(),
            mode,
        });
    }
    Ok(files)
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
    container["Configs"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|reference| {
            let file = &reference["File"];
            let entry = BTreeMap::from([
                (
                    "name".to_string(),
                    Value::text(reference["ConfigName"].as_str()?),
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
        let files = config_files(Some(&attribute("shop_web_app_1a2b3c4d"))).unwrap();
        assert_eq!(
            files,
            [ConfigFile {
                target: "/etc/app.conf".into(),
                name: "shop_web_app_1a2b3c4d".into(),
                uid: "10001".into(),
                gid: "10001".into(),
                mode: 0o440,
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
        assert_eq!(config_files(None).unwrap(), []);
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
            config_files(Some(&bad)).unwrap_err().to_string(),
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
        let config = config_files(Some(&attribute(&name))).unwrap().remove(0);
        assert_eq!(config.wanted(&recorded).data.unwrap(), content.as_bytes());
        // Another content: not found, and the apply says so rather than guess.
        let missing = config_files(Some(&attribute("shop_web_app_00000000")))
            .unwrap()
            .remove(0)
            .wanted(&recorded);
        assert!(missing.data.unwrap_err().contains("`00000000`"));
        assert_eq!(content_for("no-digest", &recorded), None);
    }

    #[test]
    fn a_live_spec_reads_back_in_the_attributes_shape() {
        let config = config_files(Some(&attribute("shop_web_app_1a2b3c4d")))
            .unwrap()
            .remove(0);
        let container = json!({ "Configs": [config.reference("cid")] });
        assert_eq!(
            Value::Map(live_configs(&container)),
            attribute("shop_web_app_1a2b3c4d")
        );
        assert!(live_configs(&json!({})).is_empty());
    }
}
