//! IP ranges in CIDR notation (`203.0.113.0/24`, `2001:db8::/32`, a bare address) and
//! whether one contains another. An allowlist that moves from `203.0.113.0/24` to
//! `0.0.0.0/0` admits more clients even though both are "one range"; only containment
//! tells a widened allowlist from a narrowed one.

use std::net::IpAddr;

/// A parsed range: the address as a 128-bit number (IPv4 in the low 32 bits) and how
/// many leading bits are fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct IpRange {
    version: IpVersion,
    network: u128,
    prefix_length: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IpVersion {
    Four,
    Six,
}

impl IpVersion {
    fn bits(self) -> u32 {
        match self {
            IpVersion::Four => 32,
            IpVersion::Six => 128,
        }
    }
}

impl IpRange {
    fn parse(text: &str) -> Option<IpRange> {
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let (version, number) = match address.parse::<IpAddr>().ok()? {
            IpAddr::V4(address) => (IpVersion::Four, u128::from(u32::from(address))),
            IpAddr::V6(address) => (IpVersion::Six, u128::from(address)),
        };
        let prefix_length = match prefix {
            Some(prefix) => prefix.parse::<u32>().ok()?,
            None => version.bits(),
        };
        if prefix_length > version.bits() {
            return None;
        }
        Some(IpRange {
            version,
            network: number & mask(version, prefix_length),
            prefix_length,
        })
    }

    fn contains(&self, other: &IpRange) -> bool {
        self.version == other.version
            && self.prefix_length <= other.prefix_length
            && other.network & mask(self.version, self.prefix_length) == self.network
    }
}

/// The bits a prefix of `length` fixes, within the address width of `version`.
fn mask(version: IpVersion, length: u32) -> u128 {
    let width = version.bits();
    let host_bits = width - length;
    let all_ones = if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    if host_bits == 128 {
        // `::/0`: a shift by the full width would overflow.
        return 0;
    }
    all_ones & !((1u128 << host_bits) - 1)
}

/// True when every address `inner` admits is admitted by one of `outer`'s ranges.
/// A range that does not parse is contained only in an identical entry, so an
/// unreadable change never passes for a narrowing.
pub fn all_contained(inner: &[String], outer: &[String]) -> bool {
    inner.iter().all(|candidate| {
        outer.iter().any(|container| {
            if container.trim() == candidate.trim() {
                return true;
            }
            match (IpRange::parse(container), IpRange::parse(candidate)) {
                (Some(container), Some(candidate)) => container.contains(&candidate),
                _ => false,
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|text| text.to_string()).collect()
    }

    #[test]
    fn everything_contains_a_subnet_and_not_the_other_way_round() {
        assert!(all_contained(
            &ranges(&["203.0.113.0/24"]),
            &ranges(&["0.0.0.0/0"])
        ));
        assert!(!all_contained(
            &ranges(&["0.0.0.0/0"]),
            &ranges(&["203.0.113.0/24"])
        ));
    }

    #[test]
    fn a_bare_address_is_a_single_host() {
        assert!(all_contained(
            &ranges(&["203.0.113.7"]),
            &ranges(&["203.0.113.0/24"])
        ));
        assert!(!all_contained(
            &ranges(&["203.0.114.7"]),
            &ranges(&["203.0.113.0/24"])
        ));
    }

    #[test]
    fn ipv6_ranges_nest_and_never_contain_ipv4() {
        assert!(all_contained(
            &ranges(&["2001:db8:1::/48"]),
            &ranges(&["2001:db8::/32"])
        ));
        assert!(all_contained(
            &ranges(&["2001:db8::/32"]),
            &ranges(&["::/0"])
        ));
        assert!(!all_contained(&ranges(&["10.0.0.0/8"]), &ranges(&["::/0"])));
    }

    #[test]
    fn a_host_part_in_the_range_is_ignored() {
        assert!(all_contained(
            &ranges(&["10.1.2.3/8"]),
            &ranges(&["10.0.0.0/8"])
        ));
    }

    #[test]
    fn an_unreadable_range_is_contained_only_in_itself() {
        assert!(all_contained(&ranges(&["office"]), &ranges(&["office"])));
        assert!(!all_contained(
            &ranges(&["office"]),
            &ranges(&["0.0.0.0/0"])
        ));
    }
}
