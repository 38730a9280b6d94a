//! `stackctl-do-emulator`: the DigitalOcean API emulator as a process, for demos and CI.
//!
//! ```text
//! cargo run -p stackctl-do-emulator -- --listen 127.0.0.1:8089 --token test-token
//! ```
//!
//! Then point stackctl at it with `DIGITALOCEAN_API_URL=http://127.0.0.1:8089` and
//! `DIGITALOCEAN_TOKEN=test-token`. Every flag also reads a `STACKCTL_DO_EMULATOR_*`
//! variable (see `EmulatorConfig::from_args`).

use stackctl_do_emulator::{Emulator, EmulatorConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--help" || arg == "-h") {
        println!(
            "usage: stackctl-do-emulator [--listen 127.0.0.1:8089] [--token TOKEN] [--public-ipv4 127.0.0.1]\n\
             \x20      [--activation-delay-ms 200] [--action-delay-ms 50] [--rate-limit 5000] [--ssh-key-list-limit 10]\n\
             \x20      [--fail-500 N] [--burst-429 N] [--retry-after SECONDS] [--drop-after-create N]\n\
             \x20      [--slow-responses N] [--slow-response-ms 2000]\n\
             \x20      [--fault-only \"POST /v2/droplets\"] [--allow-resize-while-on]\n\
             Runtime control: GET /_emulator/state, GET|POST /_emulator/faults, GET /_emulator/exchanges,\n\
             POST /_emulator/reset, POST /_emulator/droplets/ID/(resize|power-off|retag)-out-of-band"
        );
        return;
    }
    let config = match EmulatorConfig::from_args(&args, &|name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("stackctl-do-emulator: {message}");
            std::process::exit(2);
        }
    };
    let emulator = match Emulator::start(config).await {
        Ok(emulator) => emulator,
        Err(error) => {
            eprintln!("stackctl-do-emulator: cannot start: {error}");
            std::process::exit(1);
        }
    };
    // One line on stdout that scripts can wait for; the token is not part of it.
    println!("stackctl-do-emulator listening on {}", emulator.base_url());
    let _ = tokio::signal::ctrl_c().await;
    emulator.shutdown().await;
}
