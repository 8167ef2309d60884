//! Flow telemetry read by `replay --telemetry`: the sFlow datagrams other implementations
//! recorded (`../shared/captures/flows/`, see its MANIFEST.md) decode without an issue, with
//! the samples and sampled headers tshark finds in them.

mod common;

use common::{on_path, replay_files_reading, settings, shared_captures, skip};
use floodwatch::pipeline::Datagrams;
use std::path::Path;
use std::process::Command;

/// What tshark finds in an sFlow capture: flow samples, counter samples, raw packet headers.
#[derive(Debug, Default, PartialEq, Eq)]
struct Seen {
    flow_samples: u64,
    counter_samples: u64,
    raw_headers: u64,
}

fn tshark_sees(path: &Path) -> Seen {
    let out = Command::new("tshark")
        .args(["-r"])
        .arg(path)
        .args(["-d", "udp.port==6343,sflow", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=;"])
        .args(["-e", "sflow_245.sampletype", "-e", "sflow_245.header_protocol"])
        .output()
        .expect("tshark runs");
    assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
    let mut seen = Seen::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut fields = line.split('\t');
        for t in fields.next().unwrap_or("").split(';').filter(|t| !t.is_empty()) {
            match t {
                "1" | "3" => seen.flow_samples += 1,
                "2" | "4" => seen.counter_samples += 1,
                other => panic!("{}: sample type {other}", path.display()),
            }
        }
        seen.raw_headers += fields.next().unwrap_or("").split(';').filter(|t| !t.is_empty()).count() as u64;
    }
    seen
}

#[test]
fn shared_sflow_datagrams_decode_with_the_samples_tshark_shows() {
    let Some(dir) = shared_captures() else {
        return skip("../shared/captures/ is not beside the repository");
    };
    if !on_path("tshark") {
        return skip("tshark is not installed (Debian: apt-get install tshark)");
    }
    let files = [
        "ndpi__sflow.pcap",
        "akvorado__data-sflow-raw-ipv4.pcap",
        "akvorado__data-sflow-expanded-sample.pcap",
        "akvorado__data-1140.pcap",
    ];
    let mut headers = 0;
    for name in files {
        let path = dir.join("flows").join(name);
        let expected = tshark_sees(&path);
        let (_, outcome) = replay_files_reading(std::slice::from_ref(&path), Datagrams::Telemetry, settings());
        let t = outcome.traffic.telemetry;
        assert_eq!(t.issues_total(), 0, "{name}: {t:?}");
        let seen = Seen {
            flow_samples: t.flow_samples,
            counter_samples: t.counter_samples,
            raw_headers: t.records + t.undecodable_samples,
        };
        assert_eq!(seen, expected, "{name}: {t:?}");
        // Every sampled header in these files is an IP packet.
        assert_eq!(t.undecodable_samples, 0, "{name}");
        headers += t.records;
    }
    // The four files hold 9 sampled headers between them: the test reads something.
    assert_eq!(headers, 9);
}
