//! Flow telemetry read by `replay --telemetry`: the sFlow datagrams other implementations
//! recorded (`../shared/captures/flows/`, see its MANIFEST.md) decode without an issue, with
//! the samples and sampled headers tshark finds in them.

mod common;

use common::netns::{namespaces, Netns, Proc};
use common::{on_path, replay_files_reading, settings, shared_captures, skip, Scratch};
use floodwatch::capture::FileSource;
use floodwatch::decode::{decode, udp_payload, Decoded, PacketRecord};
use floodwatch::pipeline::Datagrams;
use floodwatch::telemetry::flow::FlowRecord;
use floodwatch::telemetry::netflow::{self, Templates};
use floodwatch::telemetry::{Exporters, TelemetrySettings, TelemetryStats};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Telemetry from any exporter, to the well-known ports.
fn telemetry() -> Datagrams {
    Datagrams::Telemetry(TelemetrySettings::default())
}

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
        let (_, outcome) = replay_files_reading(std::slice::from_ref(&path), telemetry(), settings());
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
    // From exporters not allowed, nothing is read, and every datagram is counted.
    let path = dir.join("flows/ndpi__sflow.pcap");
    let routers = Exporters::within(vec![floodwatch::decode::Prefix::parse("10.0.0.0/8").unwrap()]);
    let (_, outcome) = replay_files_reading(
        &[path],
        Datagrams::Telemetry(TelemetrySettings { exporters: routers, ..TelemetrySettings::default() }),
        settings(),
    );
    let t = outcome.traffic.telemetry;
    assert_eq!((t.unknown_exporters, t.datagrams_total(), t.records), (9, 0, 0), "{t:?}");
}

/// A flow as tshark and floodwatch both name it: addresses, ports (an ICMP flow's type and code
/// in its destination port, as the exporters put them), protocol.
type FlowKey = (IpAddr, IpAddr, u16, u16, u8);

/// The flows tshark decodes in a NetFlow/IPFIX capture (two passes, so data sent before its
/// template in one datagram is read too), and the packets of every count field it shows
/// (a biflow's reverse count too).
fn tshark_flows(path: &Path) -> (Vec<FlowKey>, u64) {
    let out = Command::new("tshark")
        .args(["-2", "-r"])
        .arg(path)
        .args(["-d", "udp.port==2057,cflow", "-d", "udp.port==4739,cflow"])
        .args(["-T", "fields", "-E", "occurrence=a", "-E", "aggregator=;"])
        .args(["-e", "cflow.srcaddr", "-e", "cflow.srcaddrv6", "-e", "cflow.dstaddr", "-e", "cflow.dstaddrv6"])
        .args(["-e", "cflow.srcport", "-e", "cflow.dstport", "-e", "cflow.protocol", "-e", "cflow.packets"])
        .output()
        .expect("tshark runs");
    assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
    let (mut flows, mut packets) = (Vec::new(), 0);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let columns: Vec<Vec<&str>> =
            line.split('\t').map(|c| c.split(';').filter(|v| !v.is_empty()).collect()).collect();
        let column = |i: usize| columns.get(i).cloned().unwrap_or_default();
        let (src4, src6, dst4, dst6) = (column(0), column(1), column(2), column(3));
        assert!(src4.is_empty() || src6.is_empty(), "{}: IPv4 and IPv6 flows in one datagram", path.display());
        let (src, dst) = if src6.is_empty() { (src4, dst4) } else { (src6, dst6) };
        let (sport, dport, protocol) = (column(4), column(5), column(6));
        for i in 0..src.len() {
            let number = |c: &[&str]| c.get(i).map_or(0, |v| v.parse::<u16>().expect("a number"));
            let (protocol, ip) = (number(&protocol) as u8, |v: &str| v.parse::<IpAddr>().expect("an address"));
            flows.push((ip(src[i]), ip(dst[i]), number(&sport), number(&dport), protocol));
        }
        packets += column(7).iter().map(|v| v.parse::<u64>().expect("a count")).sum::<u64>();
    }
    (flows, packets)
}

/// The data sets tshark finds no template for, in two passes.
fn tshark_without_template(path: &Path) -> u64 {
    let out = Command::new("tshark")
        .args(["-2", "-V", "-r"])
        .arg(path)
        .args(["-d", "udp.port==2057,cflow", "-d", "udp.port==4739,cflow"])
        .output()
        .expect("tshark runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("        Data (") && l.ends_with("no template found"))
        .count() as u64
}

/// The flows floodwatch reads in `paths` (one collector's templates across them), each UDP
/// datagram read as telemetry whatever its port.
fn floodwatch_flows(paths: &[PathBuf]) -> (Vec<(FlowKey, u64)>, TelemetryStats) {
    let mut templates = Templates::default();
    let mut stats = TelemetryStats::default();
    let mut flows = Vec::new();
    for path in paths {
        let mut source = FileSource::open(path.to_str().unwrap()).expect("a capture");
        source
            .read_frames(usize::MAX, |frame| {
                let mut r = PacketRecord::default();
                if let (Ok(Decoded::Ip), Some(payload)) = (decode(frame, &mut r), udp_payload(frame)) {
                    let mut each = |f: &FlowRecord, _: &mut TelemetryStats| {
                        flows.push(((f.src.to_ip(), f.dst.to_ip(), f.src_port, f.dst_port, f.protocol), f.packets));
                    };
                    if let Err(issue) =
                        netflow::read_datagram(payload, r.src, frame.ts_ns, &mut templates, &mut stats, &mut each)
                    {
                        panic!("{}: {issue:?}", path.display());
                    }
                }
                true
            })
            .expect("the capture reads");
    }
    templates.give_up(&mut stats);
    (flows, stats)
}

#[test]
fn shared_netflow_and_ipfix_datagrams_decode_with_the_flows_tshark_shows() {
    let Some(dir) = shared_captures() else {
        return skip("../shared/captures/ is not beside the repository");
    };
    if !on_path("tshark") || !on_path("mergecap") {
        return skip("tshark is not installed (Debian: apt-get install tshark)");
    }
    let flows_dir = dir.join("flows");
    let scratch = Scratch::new("telemetry-netflow-shared");
    // ipfixprobe's templates and data were recorded apart: tshark reads them as one capture.
    let ipfixprobe =
        [flows_dir.join("akvorado__ipfixprobe-templates.pcap"), flows_dir.join("akvorado__ipfixprobe-data.pcap")];
    let merged = scratch.path("ipfixprobe.pcap");
    let status = Command::new("mergecap").args(["-a", "-F", "pcap", "-w"]).arg(&merged).args(&ipfixprobe).status();
    assert!(status.expect("mergecap runs").success());
    let single = [
        "graylog__netflow5.pcap",
        "graylog__pmacctd-netflow5.pcap",
        "graylog__netflow9.pcap",
        "graylog__pmacctd-netflow9.pcap",
        "graylog__nprobe-netflow9.pcap",
        "ndpi__netflowv9.pcap",
        "akvorado__netflow9-data+templates.pcap",
        "ndpi__netflow-fritz.pcap",
    ];
    let cases = single.iter().map(|name| (name.to_string(), vec![flows_dir.join(name)], flows_dir.join(name)));
    let mut total = 0;
    for (name, paths, for_tshark) in cases.chain([("ipfixprobe".to_string(), ipfixprobe.to_vec(), merged)]) {
        let (mut expected, expected_packets) = tshark_flows(&for_tshark);
        let (read, stats) = floodwatch_flows(&paths);
        // Each flow tshark shows, floodwatch reads; beyond them, the other side of a biflow
        // (whose count tshark shows with the flow's), or what tshark does not read: the first
        // datagram of graylog__netflow9.pcap says it holds 1 record and holds 6 flowsets, with
        // the template of the IPv6 flows of two later datagrams (a set each). tshark stops at
        // the count; floodwatch walks the flowsets by their lengths. Data whose template is in
        // no datagram of the file is counted, as tshark counts it (ndpi__netflowv9.pcap starts
        // after its exporter sent its templates).
        assert_eq!(stats.issues_total(), 0, "{name}: {stats:?}");
        let (biflows, beyond_count, sets_beyond_count) = match name.as_str() {
            "ipfixprobe" => (2, 0, 0),
            "graylog__netflow9.pcap" => (0, 3, 2),
            _ => (0, 0, 0),
        };
        let without_template = tshark_without_template(&for_tshark) - sets_beyond_count;
        assert_eq!(stats.data_without_template, without_template, "{name}: {stats:?}");
        expected.sort();
        let mut unmatched = expected.clone();
        let (mut reverse, mut past_count, mut packets) = (0, 0, 0);
        for (f, n) in &read {
            let (src, dst, sport, dport, protocol) = *f;
            if let Some(i) = unmatched.iter().position(|g| g == f) {
                unmatched.remove(i);
                packets += n;
            } else if expected.contains(&(dst, src, dport, sport, protocol)) {
                reverse += 1;
                packets += n;
            } else {
                past_count += 1;
            }
        }
        assert!(unmatched.is_empty(), "{name}: flows tshark shows and floodwatch does not: {unmatched:?}");
        assert_eq!((reverse, past_count), (biflows, beyond_count), "{name}: {read:?}");
        assert_eq!(packets, expected_packets, "{name}");
        total += expected.len();
    }
    // tshark shows 247 flows in the files: the test reads something.
    assert_eq!(total, 247);
}

/// The sFlow a real exporter makes of a flood, read back: `captures/udp_flood.pcap` is
/// replayed at its own pace (tcpreplay) into a namespace where pmacctd samples it 1 in 10 and
/// exports sFlow to 127.0.0.1:6343, which tcpdump records; `replay --telemetry` of that
/// recording reports the flood the replay of the capture reports, on the same victim, from
/// the same sources.
/// pmacctd in the victim's namespace: it captures the victim's interface and exports sFlow,
/// sampled 1 in 10, to 127.0.0.1:6343 there.
fn start_pmacctd(net: &Netns, dir: &Scratch) -> Proc {
    let conf = dir.path("pmacctd.conf");
    let settings = format!(
        "daemonize: false\npcap_interface: {}\nplugins: sfprobe\nsampling_rate: 10\nsfprobe_receiver: 127.0.0.1:6343\n",
        net.victim_if
    );
    std::fs::write(&conf, settings).unwrap();
    let mut pmacctd = Proc::spawn(&net.victim, &["pmacctd", "-f", conf.to_str().unwrap()], &dir.path("pmacctd.log"));
    pmacctd.wait_for_output("Sampling at: 1/10", "pmacctd");
    pmacctd
}

/// `captures/udp_flood.pcap` sent from the attacker's namespace at its own pace; its path.
fn send_flood(net: &Netns) -> PathBuf {
    let capture = common::repo_path("captures/udp_flood.pcap");
    let sent = Command::new("ip")
        .args(["netns", "exec", &net.attacker, "tcpreplay", "-q", "-i", &net.attacker_if])
        .arg(&capture)
        .output()
        .expect("tcpreplay runs");
    assert!(sent.status.success(), "tcpreplay: {}", String::from_utf8_lossy(&sent.stderr));
    capture
}

#[test]
fn pmacctd_sflow_of_a_flood_reports_the_flood_with_its_sources() {
    let Some((_turn, net)) = namespaces("pmacctd's sFlow export", &["pmacctd", "tcpdump", "tcpreplay", "ip"], 'F')
    else {
        return;
    };
    let dir = common::Scratch::new("telemetry-pmacctd");
    let recording = dir.path("sflow.pcap");
    let rec = recording.to_str().unwrap();
    let mut tcpdump = Proc::spawn(
        &net.victim,
        &["tcpdump", "-i", "lo", "-n", "-U", "-w", rec, "udp", "dst", "port", "6343"],
        &dir.path("tcpdump.log"),
    );
    tcpdump.wait_for_output("listening on", "tcpdump");
    let mut pmacctd = start_pmacctd(&net, &dir);
    let capture = send_flood(&net);
    // pmacctd exports what it buffered on its own timer: wait until the recording stops
    // growing (bounded), then stop the exporter and the recorder.
    let size = || std::fs::metadata(&recording).map(|m| m.len()).unwrap_or(0);
    let (mut last, mut since) = (size(), Instant::now());
    let deadline = Instant::now() + Duration::from_secs(20);
    while since.elapsed() < Duration::from_secs(3) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        if size() != last {
            (last, since) = (size(), Instant::now());
        }
    }
    pmacctd.signal(libc::SIGTERM);
    pmacctd.wait_for(Duration::from_secs(5));
    tcpdump.signal(libc::SIGINT);
    assert!(tcpdump.wait_for(Duration::from_secs(5)).is_some(), "tcpdump did not stop");

    let (captured, _) = common::replay_files(&[capture], settings());
    let (sampled, outcome) = replay_files_reading(&[recording], telemetry(), settings());
    let t = outcome.traffic.telemetry;
    assert_eq!(t.issues_total(), 0, "{t:?}");
    assert!(t.records >= 100, "pmacctd sampled {} packets: {t:?}", t.records);
    let attacks = |events: &[floodwatch::analyze::AttackEvent]| common::attacked(events);
    assert_eq!(attacks(&sampled), attacks(&captured), "the sampled flood is the flood");
    let sources = |events: &[floodwatch::analyze::AttackEvent]| -> std::collections::BTreeSet<std::net::IpAddr> {
        events.iter().flat_map(|e| e.offending_ips.iter().copied()).collect()
    };
    let (from_samples, from_capture) = (sources(&sampled), sources(&captured));
    assert!(
        from_samples.is_subset(&from_capture),
        "offenders not in the capture: {:?}",
        from_samples.difference(&from_capture)
    );
    assert!(
        from_samples.len() * 10 >= from_capture.len() * 9,
        "{} of {} sources listed",
        from_samples.len(),
        from_capture.len()
    );
    // The flood's packets, estimated from the samples, within 20 % of the capture's. (Its
    // peak rate is not compared: pmacctd sends its samples in bursts, and samples carry no
    // time of their own, so a second's rate follows the bursts.)
    let packets =
        |events: &[floodwatch::analyze::AttackEvent]| common::ends(events).iter().map(|e| e.packets).sum::<u64>();
    let (estimated, counted) = (packets(&sampled), packets(&captured));
    assert!(estimated.abs_diff(counted) * 5 <= counted, "{estimated} packets estimated, {counted} in the capture");
    let peak = |events: &[floodwatch::analyze::AttackEvent]| events.iter().map(|e| e.peak_pps).max().unwrap_or(0);
    println!(
        "pmacctd sFlow 1:10: {} samples in {} datagrams; the flood: {estimated} packets estimated, {counted} in the capture; peak {} pps from the samples, {} pps in the capture",
        t.records,
        t.datagrams_total(),
        peak(&sampled),
        peak(&captured)
    );
}

/// The collector: `floodwatch run --sflow` (127.0.0.1:6343 by default) in the victim's
/// namespace receives pmacctd's sFlow of the flood as it happens and reports it, its victim
/// and its sources.
#[test]
fn the_sflow_collector_reports_a_flood_as_pmacctd_exports_it() {
    let Some((_turn, net)) = namespaces("the sFlow collector", &["pmacctd", "tcpreplay", "ip"], 'C') else {
        return;
    };
    let dir = Scratch::new("telemetry-collector");
    let alerts = dir.path("alerts.jsonl");
    let daemon = env!("CARGO_BIN_EXE_floodwatch");
    let args = [daemon, "run", "--alerts", alerts.to_str().unwrap(), "--hash-seed", "1", "--sflow"];
    let mut floodwatch = Proc::spawn(&net.victim, &args, &dir.path("floodwatch.log"));
    floodwatch.wait_for_output("collecting sFlow", "floodwatch");
    assert!(floodwatch.output().contains("127.0.0.1:6343"), "the default address: {}", floodwatch.output());
    let mut pmacctd = start_pmacctd(&net, &dir);
    send_flood(&net);
    // The alert comes as the samples do: wait for it (bounded), then stop everyone.
    let deadline = Instant::now() + Duration::from_secs(20);
    while common::netns::attack_starts(&alerts).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    pmacctd.signal(libc::SIGTERM);
    pmacctd.wait_for(Duration::from_secs(5));
    floodwatch.signal(libc::SIGTERM);
    let status = floodwatch.wait_for(Duration::from_secs(15)).expect("floodwatch stops on SIGTERM");
    assert!(status.success(), "floodwatch: {status}\n{}", floodwatch.output());
    assert_eq!(
        common::netns::attack_starts(&alerts),
        [("udp_flood".to_string(), "198.51.100.20".to_string())],
        "{}",
        floodwatch.output()
    );
    let text = std::fs::read_to_string(&alerts).unwrap();
    let end: serde_json::Value =
        serde_json::from_str(text.lines().last().expect("an attack_end")).expect("a JSON alert");
    assert_eq!(end["event"], "attack_end");
    let offenders = end["offending_ips"].as_array().map_or(0, |a| a.len());
    assert!(offenders >= 36, "{offenders} of the flood's 40 sources listed: {end}");
    assert!(end["reason"].as_str().unwrap_or("").contains("estimated from packets sampled 1 in 10"), "{end}");
}

/// capgen's own sFlow exporter (`capgen bench-sflow`): `bench_flood` sampled 1 in 10 gives
/// the floods the frames themselves give, on the same victims.
#[test]
fn capgen_sflow_of_bench_flood_gives_its_floods() {
    use capgen::bench::{write_bench_mix, write_bench_sflow, BENCH_FLOOD};
    let dir = Scratch::new("telemetry-capgen");
    let (frames, sflow) = (dir.path("bench_flood.pcap"), dir.path("bench_sflow.pcap"));
    let packets = 300_000;
    write_bench_mix(std::fs::File::create(&frames).unwrap(), &BENCH_FLOOD, packets).unwrap();
    let exported = write_bench_sflow(std::fs::File::create(&sflow).unwrap(), &BENCH_FLOOD, packets, 10).unwrap();
    assert_eq!(exported.samples, packets / 10);
    // Another reader agrees on what the exporter wrote.
    if on_path("tshark") {
        let seen = tshark_sees(&sflow);
        assert_eq!((seen.flow_samples, seen.raw_headers), (exported.samples, exported.samples));
    }
    let (captured, _) = common::replay_files(&[frames], settings());
    let (sampled, outcome) = replay_files_reading(&[sflow], telemetry(), settings());
    let t = outcome.traffic.telemetry;
    assert_eq!((t.records, t.datagrams_total(), t.issues_total()), (exported.samples, exported.datagrams, 0), "{t:?}");
    assert_eq!(common::attacked(&sampled), common::attacked(&captured));
    assert_eq!(common::attacked(&captured).len(), 3);
}
