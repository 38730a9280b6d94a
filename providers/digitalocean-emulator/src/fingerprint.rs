//! The MD5 fingerprint the emulator gives an uploaded SSH public key, as DigitalOcean
//! does. The emulator computes it itself rather than borrowing the provider's function:
//! a test double that shared the code under test could not catch a mistake in it.

use base64::Engine;
use md5::{Digest, Md5};

/// The colon-separated MD5 of the key's base64 blob (`3b:16:bf:…`), or `None` when the
/// line has no second field or it is not base64 (DigitalOcean then refuses the key with 422).
pub fn ssh_fingerprint(public_key: &str) -> Option<String> {
    let blob = public_key.split_whitespace().nth(1)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .ok()?;
    let hex_pairs: Vec<String> = Md5::digest(&decoded)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Some(hex_pairs.join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_has_sixteen_colon_separated_bytes_whatever_its_comment() {
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJxXbX1WgTgD5mMsm6CS2wEr+/zH6iK3v2b7p6gE0f2g";
        let with_comment = ssh_fingerprint(&format!("{key} deploy@ci")).unwrap();
        assert_eq!(with_comment, ssh_fingerprint(key).unwrap());
        assert_eq!(with_comment.split(':').count(), 16);
        assert_eq!(ssh_fingerprint("ssh-ed25519"), None);
        assert_eq!(ssh_fingerprint("ssh-ed25519 not*base64"), None);
    }
}
