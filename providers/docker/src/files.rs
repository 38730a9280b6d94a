//! `file.*`: configuration files on the host (an nginx.conf, a Django settings override),
//! written to a temporary path and renamed into place, read back in one batch so an edit
//! on the host shows as drift. A file whose content came from a secret is compared by
//! its salted digest and never read into a plan.

use stackctl_host::Host;
use stackctl_provider::{
    Action, ActionKind, Address, ApplyOutcome, Attributes, LiveResource, ProviderError,
    RecordedResource, Secret, Value,
};

/// The host paths of `files`, in order: refresh reads them in one batch with the
/// edge's backend files.
pub fn paths(files: &[(Address, Attributes)]) -> Vec<String> {
    files
        .iter()
        .map(|(_, attributes)| text(attributes, "path").unwrap_or_default().to_string())
        .collect()
}

/// `files` as live resources, given the contents read at [`paths`] (`None`: absent).
pub fn described(
    files: &[(Address, Attributes)],
    contents: Vec<Option<Vec<u8>>>,
    salt: &str,
) -> Vec<LiveResource> {
    let mut live = Vec::new();
    for ((address, reference), content) in files.iter().zip(contents) {
        let Some(bytes) = content else { continue };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let mut attributes = Attributes::new();
        attributes.insert(
            "path".into(),
            reference.get("path").cloned().unwrap_or(Value::Null),
        );
        let value = match reference.get("content") {
            Some(Value::Secret(_)) => {
                Value::Secret(Secret::from_digest(Secret::digest_of(&text, salt)))
            }
            _ => Value::Text(text),
        };
        attributes.insert("content".into(), value);
        live.push(LiveResource {
            address: address.clone(),
            id: None,
            attributes,
            owned: true,
        });
    }
    live
}

/// Creates, updates, replaces (a new path: write it, then remove the old) or deletes a file.
pub async fn apply(host: &dyn Host, action: &Action) -> Result<ApplyOutcome, ProviderError> {
    let failure = |error: stackctl_host::HostError| {
        ProviderError::failed(format!("`{}`: {error}", action.address))
    };
    let prior_path = action
        .prior
        .as_ref()
        .and_then(|prior| text(&prior.attributes, "path"))
        .map(str::to_string);
    if action.kind == ActionKind::Delete {
        if let Some(path) = prior_path {
            host.remove_file(&path).await.map_err(failure)?;
        }
        return Ok(ApplyOutcome::Deleted);
    }
    let desired = action.desired.as_ref().ok_or_else(|| {
        ProviderError::failed(format!("`{}` has no desired attributes", action.address))
    })?;
    let path = text(&desired.attributes, "path")
        .ok_or_else(|| ProviderError::failed(format!("`{}` has no `path`", action.address)))?;
    let temp_dir = text(&desired.attributes, "temp_dir").unwrap_or("/tmp");
    // `mode` is octal text ("0640"), as stack.toml writes it and plans show it; without
    // one, a file holding a secret is readable by its owner only.
    let holds_secret = matches!(desired.attributes.get("content"), Some(Value::Secret(_)));
    let mode = text(&desired.attributes, "mode")
        .and_then(|mode| u32::from_str_radix(mode, 8).ok())
        .unwrap_or(if holds_secret { 0o600 } else { 0o644 });
    let content = match desired.attributes.get("content") {
        Some(Value::Text(text)) => text.clone(),
        Some(Value::Secret(secret)) => secret
            .expose()
            .ok_or_else(|| {
                ProviderError::failed(format!(
                    "`{}` holds a secret whose value is not known in this run (was the plan saved?)",
                    action.address
                ))
            })?
            .to_string(),
        _ => String::new(),
    };
    // `owner` is numeric "UID:GID" (validated with the config); the file is given to it
    // before it appears, so a key is never briefly readable by another user.
    let owner = match text(&desired.attributes, "owner") {
        Some(owner) => Some(parse_owner(owner).ok_or_else(|| {
            ProviderError::failed(format!(
                "`{}`: owner `{owner}` is not numeric `UID:GID`",
                action.address
            ))
        })?),
        None => None,
    };
    host.write_file_owned(path, content.as_bytes(), mode, owner, temp_dir)
        .await
        .map_err(failure)?;
    if let Some(old) = prior_path.filter(|old| old != path) {
        host.remove_file(&old).await.map_err(failure)?;
    }
    Ok(ApplyOutcome::Recorded(RecordedResource::from_desired(
        desired, None,
    )))
}

/// `"999:999"` → (999, 999).
pub fn parse_owner(owner: &str) -> Option<(u32, u32)> {
    let (uid, gid) = owner.split_once(':')?;
    Some((uid.parse().ok()?, gid.parse().ok()?))
}

fn text<'a>(attributes: &'a Attributes, name: &str) -> Option<&'a str> {
    attributes.get(name).and_then(Value::as_text)
}
