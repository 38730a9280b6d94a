//! How locked down a container is: its capabilities, `no-new-privileges`, privileged
//! mode, process limit and tmpfs mounts — as attributes, as Docker's `HostConfig`, and
//! read back from `inspect` so that a change by hand is drift.
//!
//! Pure. An attribute a resource leaves out (a stack recorded before these settings
//! existed) means Docker's default, and is read back only when the container differs
//! from that default.

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};
use stackctl_provider::{Attributes, Value};

use crate::spec::{text_list, SpecError};

/// The hardening attributes of a `service.*` resource, every one optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerHardening {
    pub cap_drop: Vec<String>,
    pub cap_add: Vec<String>,
    pub no_new_privileges: bool,
    pub privileged: bool,
    /// `None`: no limit (Docker's default).
    pub pids_limit: Option<i64>,
    /// Path → mount options.
    pub tmpfs: BTreeMap<String, String>,
}

/// The `SecurityOpt` entry that sets `no-new-privileges`.
const NO_NEW_PRIVILEGES: &str = "no-new-privileges:true";

impl ContainerHardening {
    pub fn from_attributes(attributes: &Attributes) -> Result<ContainerHardening, SpecError> {
        let list = |name: &str| -> Result<Vec<String>, SpecError> {
            match attributes.get(name) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(value) => Ok(text_list(value, name)?
                    .iter()
                    .map(|name| capability(name))
                    .collect()),
            }
        };
        let flag = |name: &str| {
            attributes
                .get(name)
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        let mut tmpfs = BTreeMap::new();
        if let Some(entries) = attributes.get("tmpfs").and_then(Value::as_map) {
            for (path, options) in entries {
                let options = options.as_text().ok_or(SpecError::NotTextList {
                    setting: "tmpfs".to_string(),
                })?;
                tmpfs.insert(path.clone(), options.to_string());
            }
        }
        Ok(ContainerHardening {
            cap_drop: list("cap_drop")?,
            cap_add: list("cap_add")?,
            no_new_privileges: flag("no_new_privileges"),
            privileged: flag("privileged"),
            pids_limit: attributes
                .get("pids_limit")
                .and_then(Value::as_integer)
                .filter(|limit| *limit > 0),
            tmpfs,
        })
    }

    /// Writes the settings into the `HostConfig` of `POST /containers/create`.
    pub fn apply_to(&self, host_config: &mut Json) {
        if !self.cap_drop.is_empty() {
            host_config["CapDrop"] = json!(self.cap_drop);
        }
        if !self.cap_add.is_empty() {
            host_config["CapAdd"] = json!(self.cap_add);
        }
        if self.no_new_privileges {
            host_config["SecurityOpt"] = json!([NO_NEW_PRIVILEGES]);
        }
        host_config["Privileged"] = json!(self.privileged);
        if let Some(limit) = self.pids_limit {
            host_config["PidsLimit"] = json!(limit);
        }
        if !self.tmpfs.is_empty() {
            host_config["Tmpfs"] = json!(self.tmpfs);
        }
    }

    /// The settings as a container runs them (`HostConfig` of `GET /containers/{id}/json`).
    pub fn of_container(host_config: &Json) -> ContainerHardening {
        let names = |json: &Json| -> Vec<String> {
            let mut names: Vec<String> = json
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .filter_map(|name| name.as_str().map(capability))
                .collect();
            names.sort();
            names
        };
        let no_new_privileges = host_config["SecurityOpt"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .filter_map(Json::as_str)
            .any(|option| {
                matches!(
                    option,
                    "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true"
                )
            });
        let tmpfs = host_config["Tmpfs"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(path, options)| (path.clone(), options.as_str().unwrap_or("").to_string()))
            .collect();
        ContainerHardening {
            cap_drop: names(&host_config["CapDrop"]),
            cap_add: names(&host_config["CapAdd"]),
            no_new_privileges,
            privileged: host_config["Privileged"].as_bool().unwrap_or(false),
            pids_limit: host_config["PidsLimit"].as_i64().filter(|limit| *limit > 0),
            tmpfs,
        }
    }

    /// Puts what the container runs into `attributes` in the resource's shape: every
    /// attribute the resource sets, and any other that differs from Docker's default.
    pub fn read_into(&self, attributes: &mut Attributes) {
        let texts =
            |names: &[String]| Value::List(names.iter().cloned().map(Value::Text).collect());
        let mut put = |name: &str, value: Value, is_default: bool| {
            if attributes.contains_key(name) || !is_default {
                attributes.insert(name.to_string(), value);
            }
        };
        // Lowering sorts capabilities, as `of_container` does.
        put("cap_drop", texts(&self.cap_drop), self.cap_drop.is_empty());
        put("cap_add", texts(&self.cap_add), self.cap_add.is_empty());
        put(
            "no_new_privileges",
            Value::Bool(self.no_new_privileges),
            !self.no_new_privileges,
        );
        put("privileged", Value::Bool(self.privileged), !self.privileged);
        let tmpfs: BTreeMap<String, Value> = self
            .tmpfs
            .iter()
            .map(|(path, options)| (path.clone(), Value::text(options)))
            .collect();
        put("tmpfs", Value::Map(tmpfs), self.tmpfs.is_empty());
        // No limit where the resource sets one: `null`, so that the limit lifted by hand
        // shows as drift (an absent attribute would not).
        let limit = self.pids_limit.map_or(Value::Null, Value::Integer);
        put("pids_limit", limit, self.pids_limit.is_none());
    }
}

/// A capability as the attributes write it: upper case, without `CAP_` (Docker 20.10
/// shows what it was given; later versions add the prefix).
fn capability(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    upper
        .strip_prefix("CAP_")
        .map(str::to_string)
        .unwrap_or(upper)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hardened() -> Attributes {
        let mut attributes = Attributes::new();
        attributes.insert("cap_drop".into(), Value::List(vec![Value::text("ALL")]));
        attributes.insert(
            "cap_add".into(),
            Value::List(vec![Value::text("CHOWN"), Value::text("SETUID")]),
        );
        attributes.insert("no_new_privileges".into(), Value::Bool(true));
        attributes.insert("privileged".into(), Value::Bool(false));
        attributes.insert("pids_limit".into(), Value::Integer(256));
        attributes.insert(
            "tmpfs".into(),
            Value::Map(BTreeMap::from([(
                "/tmp".to_string(),
                Value::text("rw,noexec,nosuid,size=64m"),
            )])),
        );
        attributes
    }

    #[test]
    fn the_host_config_carries_every_setting() {
        let hardening = ContainerHardening::from_attributes(&hardened()).unwrap();
        let mut host_config = json!({});
        hardening.apply_to(&mut host_config);
        assert_eq!(
            host_config,
            json!({
                "CapDrop": ["ALL"],
                "CapAdd": ["CHOWN", "SETUID"],
                "SecurityOpt": ["no-new-privileges:true"],
                "Privileged": false,
                "PidsLimit": 256,
                "Tmpfs": {"/tmp": "rw,noexec,nosuid,size=64m"}
            })
        );
    }

    #[test]
    fn the_settings_read_back_unchanged_and_a_hand_change_shows() {
        let declared = hardened();
        let live_host_config = json!({
            "CapDrop": ["ALL"],
            "CapAdd": ["CAP_SETUID", "CAP_CHOWN"],
            "SecurityOpt": ["no-new-privileges:true"],
            "Privileged": false,
            "PidsLimit": 256,
            "Tmpfs": {"/tmp": "rw,noexec,nosuid,size=64m"}
        });
        let mut live = declared.clone();
        ContainerHardening::of_container(&live_host_config).read_into(&mut live);
        assert_eq!(live, declared);

        let mut changed = live_host_config.clone();
        changed["PidsLimit"] = json!(4096);
        let mut lifted = live_host_config.clone();
        lifted["PidsLimit"] = json!(0);
        let mut live = declared.clone();
        ContainerHardening::of_container(&lifted).read_into(&mut live);
        assert_eq!(live["pids_limit"], Value::Null);
        changed["CapAdd"] = json!(["CAP_SYS_ADMIN"]);
        changed["SecurityOpt"] = Json::Null;
        let mut live = declared.clone();
        ContainerHardening::of_container(&changed).read_into(&mut live);
        assert_eq!(live["pids_limit"], Value::Integer(4096));
        assert_eq!(live["cap_add"], Value::List(vec![Value::text("SYS_ADMIN")]));
        assert_eq!(live["no_new_privileges"], Value::Bool(false));
    }

    #[test]
    fn an_unhardened_container_of_an_old_record_plans_no_drift() {
        // Recorded before hardening existed: no such attributes, Docker's defaults live.
        let mut live = Attributes::new();
        ContainerHardening::of_container(&json!({"Privileged": false, "PidsLimit": null}))
            .read_into(&mut live);
        assert!(live.is_empty(), "{live:?}");
        // A capability or privileged mode added by hand still shows.
        ContainerHardening::of_container(&json!({"Privileged": true, "CapAdd": ["NET_ADMIN"]}))
            .read_into(&mut live);
        assert_eq!(live["privileged"], Value::Bool(true));
        assert_eq!(live["cap_add"], Value::List(vec![Value::text("NET_ADMIN")]));
    }
}
