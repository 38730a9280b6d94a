//! Proves lists are followed across pages, with filters kept, against the base URL.

mod common;

use common::*;
use serde_json::Value as Json;
use stackctl_digitalocean::client::Client;

#[tokio::test]
async fn every_page_is_read_and_filters_survive_the_next_link() {
    let emulator = start_emulator().await;
    let mut config = client_config(&emulator, Some(TOKEN));
    config.page_size = 2;
    let client = Client::new(config).expect("client");
    for index in 0..5 {
        let tags = if index == 4 {
            vec!["other"]
        } else {
            vec!["stackctl:shop"]
        };
        let body = serde_json::json!({
            "name": format!("web-{index}"), "region": "fra1", "size": "s-1vcpu-1gb",
            "image": "docker-20-04", "tags": tags,
        });
        client.create_droplet(&body).await.expect("created");
    }
    let tagged = client
        .list_droplets_by_tag("stackctl:shop")
        .await
        .expect("listed");
    assert_eq!(tagged.len(), 4);
    let sizes: Vec<Json> = client
        .list_all("/v2/sizes", &[], "sizes")
        .await
        .expect("sizes");
    assert_eq!(sizes.len(), 7);
    let pages: Vec<_> = emulator
        .exchanges()
        .into_iter()
        .filter(|exchange| exchange.method == "GET" && exchange.path == "/v2/droplets")
        .collect();
    assert_eq!(pages.len(), 2, "4 tagged droplets, 2 per page");
    assert!(pages
        .iter()
        .all(|page| page.query.contains("tag_name=stackctl%3Ashop")));
    assert_eq!(
        pages[0]
            .response_body
            .as_ref()
            .and_then(|body| body["meta"]["total"].as_i64()),
        Some(4)
    );
    assert_contract(&emulator);
}

#[tokio::test]
async fn single_page_lists_without_links_are_accepted() {
    let emulator = start_emulator().await;
    let client = client(&emulator);
    let domains: Vec<Json> = client
        .list_all("/v2/domains", &[], "domains")
        .await
        .expect("empty list");
    assert!(domains.is_empty());
    let regions: Vec<Json> = client
        .list_all("/v2/regions", &[], "regions")
        .await
        .expect("regions");
    assert_eq!(regions.len(), 10);
    assert_contract(&emulator);
}
