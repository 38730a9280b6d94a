//! The fixed sizes, regions and images the emulator offers. Values follow DigitalOcean's
//! public catalogue closely enough for plans and tests; prices are indicative only.

use serde_json::{json, Value as Json};

/// (slug, memory MB, vcpus, disk GB, transfer TB, monthly USD)
const SIZES: &[(&str, i64, i64, i64, f64, f64)] = &[
    ("s-1vcpu-512mb-10gb", 512, 1, 10, 0.5, 4.0),
    ("s-1vcpu-1gb", 1024, 1, 25, 1.0, 6.0),
    ("s-1vcpu-2gb", 2048, 1, 50, 2.0, 12.0),
    ("s-2vcpu-2gb", 2048, 2, 60, 3.0, 18.0),
    ("s-2vcpu-4gb", 4096, 2, 80, 4.0, 24.0),
    ("s-4vcpu-8gb", 8192, 4, 160, 5.0, 48.0),
    ("s-8vcpu-16gb", 16384, 8, 320, 6.0, 96.0),
];

/// (slug, display name)
const REGIONS: &[(&str, &str)] = &[
    ("ams3", "Amsterdam 3"),
    ("blr1", "Bangalore 1"),
    ("fra1", "Frankfurt 1"),
    ("lon1", "London 1"),
    ("nyc1", "New York 1"),
    ("nyc3", "New York 3"),
    ("sfo3", "San Francisco 3"),
    ("sgp1", "Singapore 1"),
    ("syd1", "Sydney 1"),
    ("tor1", "Toronto 1"),
];

pub fn region_slugs() -> Vec<&'static str> {
    REGIONS.iter().map(|(slug, _)| *slug).collect()
}

pub fn size(slug: &str) -> Option<Json> {
    SIZES.iter().find(|size| size.0 == slug).map(
        |&(slug, memory, vcpus, disk, transfer, monthly)| {
            json!({
                "slug": slug,
                "memory": memory,
                "vcpus": vcpus,
                "disk": disk,
                "transfer": transfer,
                "price_monthly": monthly,
                "price_hourly": (monthly / 672.0 * 100000.0).round() / 100000.0,
                "regions": region_slugs(),
                "available": true,
                "description": "Basic",
                "disk_info": [{"type": "local", "size": {"amount": disk, "unit": "gib"}}],
            })
        },
    )
}

pub fn sizes() -> Vec<Json> {
    SIZES
        .iter()
        .filter_map(|size_row| size(size_row.0))
        .collect()
}

pub fn region(slug: &str) -> Option<Json> {
    REGIONS.iter().find(|region| region.0 == slug).map(|(slug, name)| {
        json!({
            "slug": slug,
            "name": name,
            "features": ["backups", "ipv6", "metadata", "install_agent", "storage", "image_transfer"],
            "available": true,
            "sizes": SIZES.iter().map(|size| size.0).collect::<Vec<_>>(),
        })
    })
}

pub fn regions() -> Vec<Json> {
    REGIONS
        .iter()
        .filter_map(|region_row| region(region_row.0))
        .collect()
}

/// Resolves a requested region: an exact slug, or a prefix such as `nyc` meaning "any
/// datacenter there" (the first one is taken). Absent means "anywhere".
pub fn resolve_region(requested: Option<&str>) -> Option<&'static str> {
    match requested {
        None => Some("nyc3"),
        Some(wanted) => REGIONS
            .iter()
            .map(|(slug, _)| *slug)
            .find(|slug| *slug == wanted)
            .or_else(|| {
                REGIONS
                    .iter()
                    .map(|(slug, _)| *slug)
                    .find(|slug| slug.starts_with(wanted))
            }),
    }
}

/// An image object for a slug or a numeric id. Any image is accepted: the emulator
/// does not know DigitalOcean's image list, and stackctl never depends on it.
pub fn image(requested: &Json, region: &str, created_at: &str) -> Json {
    let (id, slug) = match requested {
        Json::Number(number) => (number.as_i64().unwrap_or(1), Json::Null),
        Json::String(slug) => (stable_number(slug), Json::String(slug.clone())),
        _ => (1, Json::Null),
    };
    let name = slug.as_str().unwrap_or("custom image").to_string();
    let distribution = if name.starts_with("debian") {
        "Debian"
    } else {
        "Ubuntu"
    };
    json!({
        "id": id,
        "name": name,
        "type": if slug.is_null() { "snapshot" } else { "base" },
        "distribution": distribution,
        "slug": slug,
        "public": !slug.is_null(),
        "regions": [region],
        "created_at": created_at,
        "min_disk_size": 10,
        "size_gigabytes": 2.5,
        "description": name,
        "tags": [],
        "status": "available",
    })
}

/// A small positive number derived from text, so one image slug always has one id.
fn stable_number(text: &str) -> i64 {
    let mut value: i64 = 7;
    for byte in text.bytes() {
        value = (value.wrapping_mul(31).wrapping_add(byte as i64)) % 100_000_000;
    }
    value.abs() + 1
}
