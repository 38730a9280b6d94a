//! The hardened default every container gets, and how a service's exceptions to it are
//! read: all Linux capabilities dropped, `no-new-privileges`, not privileged, a process
//! limit, and tmpfs mounts for the paths a read-only root needs. Pure.

use super::{SecurityConfig, ServiceConfig};

/// Processes and threads a container may run when stack.toml does not say: far above
/// what gunicorn, Celery or Postgres start on a small droplet, far below a fork bomb.
pub const DEFAULT_PIDS_LIMIT: i64 = 256;

/// Options of a tmpfs mount that names none: writable, nothing executed from it, no
/// setuid, and small (it is memory).
pub const DEFAULT_TMPFS_OPTIONS: &str = "rw,noexec,nosuid,size=64m";

/// The capabilities of Linux 6.x, without `CAP_`: what `cap_add` may name.
pub const KNOWN_CAPABILITIES: &[&str] = &[
    "AUDIT_CONTROL",
    "AUDIT_READ",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "BPF",
    "CHECKPOINT_RESTORE",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "PERFMON",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYSLOG",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "WAKE_ALARM",
];

/// A capability as stackctl writes it: upper case, without `CAP_` (`cap_chown` → `CHOWN`).
pub fn capability_name(text: &str) -> String {
    let upper = text.trim().to_ascii_uppercase();
    upper
        .strip_prefix("CAP_")
        .map(str::to_string)
        .unwrap_or(upper)
}

/// `"/tmp"` or `"/run:size=16m"` → (path, options), the default options when none are
/// written; otherwise why the text is not a mount stackctl will make.
///
/// The path must name one directory plainly: absolute, not `/` (a tmpfs over the whole
/// root hides the image), without `.` or `..` segments (`/tmp/../etc` is `/etc`) and
/// without empty ones (`/run//app`). One trailing `/` is allowed: `/run/app/` is `/run/app`.
pub fn tmpfs_mount(text: &str) -> Result<(String, String), String> {
    let (path, options) = text
        .split_once(':')
        .unwrap_or((text, DEFAULT_TMPFS_OPTIONS));
    if options.is_empty() {
        return Err("the options after `:` are empty".into());
    }
    let Some(relative) = path.strip_prefix('/') else {
        return Err("the path is not absolute".into());
    };
    let relative = relative.strip_suffix('/').unwrap_or(relative);
    if relative.is_empty() {
        return Err("a tmpfs over `/` would hide the whole image".into());
    }
    for segment in relative.split('/') {
        match segment {
            "" => return Err("the path has an empty segment (`//`)".into()),
            "." | ".." => {
                return Err(format!(
                    "the path has a `{segment}` segment; write the directory it means"
                ))
            }
            _ => {}
        }
    }
    Ok((format!("/{relative}"), options.to_string()))
}

impl SecurityConfig {
    /// True when the section relaxes the default (and so needs a `reason`).
    pub fn relaxes(&self) -> bool {
        !self.cap_add.is_empty() || self.privileged || self.new_privileges
    }
}

impl ServiceConfig {
    /// The capabilities given back, normalised, sorted and without repeats.
    pub fn added_capabilities(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .security
            .iter()
            .flat_map(|security| security.cap_add.iter())
            .map(|name| capability_name(name))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    pub fn privileged(&self) -> bool {
        self.security
            .as_ref()
            .is_some_and(|security| security.privileged)
    }

    /// `no-new-privileges`, unless the service's security section allows new privileges.
    pub fn no_new_privileges(&self) -> bool {
        !self
            .security
            .as_ref()
            .is_some_and(|security| security.new_privileges)
    }

    pub fn pids_limit_or_default(&self) -> i64 {
        self.pids_limit.unwrap_or(DEFAULT_PIDS_LIMIT)
    }

    /// Why the service relaxes the hardened default, when it says.
    pub fn security_reason(&self) -> Option<&str> {
        self.security
            .as_ref()
            .and_then(|security| security.reason.as_deref())
            .map(str::trim)
            .filter(|reason| !reason.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_written_one_way() {
        assert_eq!(capability_name("cap_chown"), "CHOWN");
        assert_eq!(capability_name(" NET_BIND_SERVICE "), "NET_BIND_SERVICE");
        assert!(KNOWN_CAPABILITIES.contains(&capability_name("CAP_SETUID").as_str()));
    }

    #[test]
    fn tmpfs_mounts_take_default_options() {
        assert_eq!(
            tmpfs_mount("/tmp"),
            Ok(("/tmp".into(), DEFAULT_TMPFS_OPTIONS.into()))
        );
        assert_eq!(
            tmpfs_mount("/run/app/:size=16m"),
            Ok(("/run/app".into(), "size=16m".into()))
        );
    }

    #[test]
    fn tmpfs_paths_name_one_directory_plainly() {
        for text in [
            "tmp",
            "run/app",
            "/tmp:",
            "/",
            "/:size=1m",
            "//",
            "/tmp/../etc",
            "/..",
            "/tmp/./x",
            "/.",
            "/run//app",
            "//tmp",
            "/tmp//",
        ] {
            assert!(tmpfs_mount(text).is_err(), "`{text}` was accepted");
        }
        assert_eq!(
            tmpfs_mount("/tmp/../etc"),
            Err("the path has a `..` segment; write the directory it means".into())
        );
        // Dots inside a name are a name.
        assert_eq!(
            tmpfs_mount("/var/cache/..app.d").map(|(path, _)| path),
            Ok("/var/cache/..app.d".into())
        );
    }

    #[test]
    fn a_service_is_hardened_unless_it_says_otherwise() {
        let plain = ServiceConfig::default();
        assert!(plain.no_new_privileges());
        assert!(!plain.privileged());
        assert!(plain.added_capabilities().is_empty());
        assert_eq!(plain.pids_limit_or_default(), DEFAULT_PIDS_LIMIT);
        let relaxed = ServiceConfig {
            security: Some(SecurityConfig {
                cap_add: vec!["setuid".into(), "CAP_CHOWN".into(), "SETUID".into()],
                new_privileges: true,
                reason: Some("  ".into()),
                ..SecurityConfig::default()
            }),
            ..ServiceConfig::default()
        };
        assert_eq!(relaxed.added_capabilities(), vec!["CHOWN", "SETUID"]);
        assert!(!relaxed.no_new_privileges());
        assert_eq!(relaxed.security_reason(), None);
    }
}
