use std::collections::BTreeMap;

use crate::cli::args::GraphFormat;
use crate::cli::providers::ProviderOptions;
use crate::cli::report::{CliError, Outcome};
use crate::cli::settings::Settings;

use crate::session::Access;

use super::{open_session, print};

pub fn run(settings: &Settings, format: GraphFormat) -> Result<Outcome, CliError> {
    let session = open_session(settings, &ProviderOptions::default(), Access::Read, None)?;
    let desired = session.desired();
    let edges: BTreeMap<_, _> = desired
        .iter()
        .map(|resource| (resource.address.clone(), resource.dependencies.clone()))
        .collect();
    print(&match format {
        GraphFormat::Dot => crate::graph::to_dot(&edges),
        GraphFormat::Mermaid => crate::graph::to_mermaid(&edges),
    });
    Ok(Outcome::Success)
}
