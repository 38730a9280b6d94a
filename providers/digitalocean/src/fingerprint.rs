//! The MD5 fingerprint DigitalOcean gives an SSH public key.

use base64::Engine;
use md5::{Digest, Md5};

/// Returns the classic colon-separated MD5 fingerprint (`3b:16:bf:…`) of an OpenSSH
/// public key line (`ssh-ed25519 AAAA… comment`), or `None` when the line holds no
/// base64 key blob. DigitalOcean identifies keys by this, so matching on it lets an
/// existing key be adopted instead of uploaded twice.
pub fn ssh_fingerprint(public_key: &str) -> Option<String> {
    let blob = public_key.split_whitespace().nth(1)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .ok()?;
    let digest = Md5::digest(&bytes);
    Some(
        digest
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_ignores_the_comment() {
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJxXbX1WgTgD5mMsm6CS2wEr+/zH6iK3v2b7p6gE0f2g";
        let first = ssh_fingerprint(&format!("{key} alice@laptop")).unwrap();
        let second = ssh_fingerprint(key).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.len(), 47);
        assert!(ssh_fingerprint("not a key").is_none());
    }
}
