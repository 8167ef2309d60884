//! The Grafana dashboard (`dashboards/floodwatch.json`) and the Prometheus alert rules
//! (`prometheus/floodwatch-rules.yml`) speak of the metrics the daemon exports: every metric
//! they name is one `/metrics` renders, every panel query and rule is PromQL that promtool
//! accepts, and the rules pass their unit tests (`promtool test rules`).

mod common;

use common::*;
use floodwatch::output::metrics::Metrics;
use floodwatch::output::mitigation::exabgp::Target;
use floodwatch::output::mitigation::{Mitigation, MitigationOptions};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

/// The `floodwatch_*` names in a text.
fn metric_names_in(text: &str) -> BTreeSet<String> {
    text.match_indices("floodwatch_")
        .map(|(at, _)| {
            let name: String =
                text[at..].chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_').collect();
            name
        })
        .collect()
}

/// The metric names `/metrics` serves (a summary's `_sum` and `_count` too), BGP mitigation's
/// with its relay link included (a link to no relay, closed at once).
fn exported() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let metrics = Metrics::default();
    let opts =
        MitigationOptions { target: Some(Target::Relay("/nonexistent/relay.sock".into())), ..Default::default() };
    let mitigation = Mitigation::open(opts, Duration::ZERO).unwrap();
    metrics.set_mitigation(mitigation.counters());
    for line in metrics.render().lines() {
        if let Some([name, kind]) = line.strip_prefix("# TYPE ").map(|t| t.split(' ').collect::<Vec<_>>()).as_deref() {
            names.insert(name.to_string());
            if *kind == "summary" {
                names.extend([format!("{name}_sum"), format!("{name}_count")]);
            }
        }
    }
    mitigation.finish();
    names
}

fn dashboard() -> Value {
    let text = std::fs::read_to_string(repo_path("dashboards/floodwatch.json")).unwrap();
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// Every panel's queries, with Grafana's variables given values Prometheus accepts.
fn panel_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap().iter().filter(|p| p["type"] != "row") {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let promql = expr.replace("$__rate_interval", "1m").replace("$__range", "1h").replace("$instance", ".*");
            queries
                .push((format!("{} {}", panel["title"].as_str().unwrap(), target["refId"].as_str().unwrap()), promql));
        }
    }
    queries
}

#[test]
fn the_dashboard_and_the_rules_name_only_metrics_the_daemon_exports() {
    let exported = exported();
    assert!(exported.contains("floodwatch_packets_total") && exported.contains("floodwatch_batch_latency_seconds_sum"));
    let d = dashboard();
    assert_eq!(d["uid"], "floodwatch");
    let panels: Vec<&Value> = d["panels"].as_array().unwrap().iter().filter(|p| p["type"] != "row").collect();
    for p in &panels {
        let title = p["title"].as_str().unwrap_or_default();
        assert!(!title.is_empty() && !p["description"].as_str().unwrap_or_default().is_empty(), "{p}");
        assert!(p["fieldConfig"]["defaults"]["unit"].is_string(), "{title}: no unit");
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}: no query");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}: a fixed data source");
        }
    }
    let in_dashboard: BTreeSet<String> = panel_queries(&d).iter().flat_map(|(_, q)| metric_names_in(q)).collect();
    let rules = std::fs::read_to_string(repo_path("prometheus/floodwatch-rules.yml")).unwrap();
    let in_rules = metric_names_in(&rules);
    for name in in_dashboard.iter().chain(&in_rules) {
        assert!(exported.contains(name), "{name} is not a metric floodwatch exports");
    }
    // What an on-call engineer looks at first, all on the dashboard.
    for wanted in [
        "floodwatch_packets_total",
        "floodwatch_bytes_total",
        "floodwatch_kernel_dropped_total",
        "floodwatch_active_attacks",
        "floodwatch_alerts_total",
        "floodwatch_sink_dropped_total",
        "floodwatch_batch_latency_seconds",
        "floodwatch_detection_delay_seconds",
    ] {
        assert!(in_dashboard.contains(wanted), "the dashboard shows no {wanted}");
    }
    for wanted in [
        "floodwatch_active_attacks",
        "floodwatch_kernel_dropped_total",
        "floodwatch_sink_dropped_total",
        "floodwatch_bgp_relay_connected",
    ] {
        assert!(in_rules.contains(wanted), "no rule on {wanted}");
    }
    assert!(rules.contains("up{job=\"floodwatch\"}"), "no rule for the daemon down");
}

#[test]
fn every_panel_query_and_rule_is_promql_and_the_rules_pass_their_unit_tests() {
    if !on_path("promtool") {
        return skip("promtool is not installed (Debian package prometheus)");
    }
    let dir = Scratch::new("dashboards");
    // The panels' queries as recording rules: `promtool check rules` parses each one.
    let mut recorded = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (k, (_, promql)) in panel_queries(&dashboard()).iter().enumerate() {
        let quoted = serde_json::to_string(promql).unwrap();
        recorded.push_str(&format!("      - record: dashboard:query_{k}\n        expr: {quoted}\n"));
    }
    let file = dir.path("dashboard-queries.yml");
    std::fs::write(&file, recorded).unwrap();
    let promtool = |args: &[&str], cwd: &std::path::Path| {
        let out = Command::new("promtool").args(args).current_dir(cwd).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "promtool {args:?}:\n{text}");
        text
    };
    let checked = promtool(&["check", "rules", file.to_str().unwrap()], &dir);
    assert!(checked.contains(&format!("SUCCESS: {} rules found", panel_queries(&dashboard()).len())), "{checked}");
    let rules_dir = repo_path("prometheus");
    let checked = promtool(&["check", "rules", "floodwatch-rules.yml"], &rules_dir);
    assert!(checked.contains("SUCCESS: 7 rules found"), "{checked}");
    let tested = promtool(&["test", "rules", "floodwatch-rules.test.yml"], &rules_dir);
    assert!(tested.contains("SUCCESS"), "{tested}");
}
