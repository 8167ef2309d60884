//! Flow telemetry read by `replay --telemetry`: the sFlow datagrams other implementations
//! recorded (`../shared/captures/flows/`, see its MANIFEST.md) decode without an issue, with
//! the samples and sampled headers tshark finds in them.

mod common;

use common::netns::{namespaces, Netns, Proc};
use common::{on_path, replay_files_reading, settings, shared_captures, skip, Scratch};
use floodwatch::analyze::{DetectionSettings, TelemetrySource};
use floodwatch::capture::FileSource;
use floodwatch::decode::{decode, udp_payload, Decoded, ExportFormat, PacketRecord};
use floodwatch::pipeline::Datagrams;
use floodwatch::telemetry::flow::FlowRecord;
use floodwatch::telemetry::netflow::{self, Templates};
use floodwatch::telemetry::sflow::InterfaceCounters;
use floodwatch::telemetry::{Collector, Exporters, FlowClock, TelemetrySettings, TelemetryStats};
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
    // Counter samples: the collector keeps each interface's latest counters, as tshark last
    // shows them.
    let path = dir.join("flows/ndpi__sflow.pcap");
    let interfaces = collector_interfaces(&path);
    let expected = tshark_interfaces(&path);
    assert!(!expected.is_empty(), "{}: no interface counters", path.display());
    let read: Vec<_> = interfaces.iter().map(|(agent, c)| (*agent, c.if_index, c.in_octets, c.out_octets)).collect();
    assert_eq!(read, expected);
    assert!(interfaces.iter().all(|(_, c)| c.up && c.speed == 100_000_000 && c.in_packets > 0), "{interfaces:?}");
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

/// The latest counters of each interface in an sFlow capture, as one collector reads them.
fn collector_interfaces(path: &Path) -> Vec<(IpAddr, InterfaceCounters)> {
    let mut collector = Collector::new(&TelemetrySettings::default(), FlowClock::Exporter);
    let mut stats = TelemetryStats::default();
    let mut source = FileSource::open(path.to_str().unwrap()).expect("a capture");
    source
        .read_frames(usize::MAX, |frame| {
            let mut r = PacketRecord::default();
            if let (Ok(Decoded::Ip), Some(payload)) = (decode(frame, &mut r), udp_payload(frame)) {
                collector.read(payload, r.src.to_ip(), frame.ts_ns, &mut stats, &mut |_, _| ());
            }
            true
        })
        .expect("the capture reads");
    assert_eq!(stats.issues_total(), 0, "{stats:?}");
    collector.interfaces()
}

/// The last input and output octets tshark shows for each (agent, interface index), sorted.
fn tshark_interfaces(path: &Path) -> Vec<(IpAddr, u32, u64, u64)> {
    let out = Command::new("tshark")
        .args(["-r"])
        .arg(path)
        .args(["-d", "udp.port==6343,sflow", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=;"])
        .args(["-e", "ip.src", "-e", "sflow_245.ifindex", "-e", "sflow_245.ifinoct", "-e", "sflow_245.ifoutoct"])
        .output()
        .expect("tshark runs");
    let mut latest = std::collections::BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let columns: Vec<Vec<&str>> =
            line.split('\t').map(|c| c.split(';').filter(|v| !v.is_empty()).collect()).collect();
        let (Some(agent), Some(index)) = (columns[0].first(), columns.get(1)) else { continue };
        for (i, if_index) in index.iter().enumerate() {
            let number = |c: usize| columns[c][i].parse::<u64>().expect("a number");
            latest.insert((agent.parse::<IpAddr>().unwrap(), if_index.parse::<u32>().unwrap()), (number(2), number(3)));
        }
    }
    latest.into_iter().map(|((agent, index), (rx, tx))| (agent, index, rx, tx)).collect()
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

/// A real exporter in the victim's namespace: it captures the victim's interface and exports
/// to 127.0.0.1 there, sampling 1 in 10.
#[derive(Clone, Copy, Debug)]
enum Exporter {
    /// pmacctd's sfprobe plugin: sFlow v5 to 6343.
    PmacctdSflow,
    /// pmacctd's nfprobe plugin: NetFlow v9 to 2055, flows cut every second. It reads the
    /// capture itself (`pcap_savefile`): on an interface, pmacctd 1.7.7's nfprobe sent
    /// nothing before it stopped in our runs.
    PmacctdNetflow,
    /// softflowd: IPFIX to 4739, flows cut every second.
    SoftflowdIpfix,
}

impl Exporter {
    fn port(self) -> u16 {
        match self {
            Exporter::PmacctdSflow => 6343,
            Exporter::PmacctdNetflow => 2055,
            Exporter::SoftflowdIpfix => 4739,
        }
    }

    /// What its alerts say they were counted from: its format, from 127.0.0.1, 1 in 10.
    fn source(self) -> TelemetrySource {
        let format = match self {
            Exporter::PmacctdSflow => ExportFormat::Sflow,
            Exporter::PmacctdNetflow => ExportFormat::Netflow,
            Exporter::SoftflowdIpfix => ExportFormat::Ipfix,
        };
        TelemetrySource { format, exporter: IpAddr::from([127, 0, 0, 1]), sampling_rate: 10 }
    }

    fn program(self) -> &'static str {
        match self {
            Exporter::PmacctdSflow | Exporter::PmacctdNetflow => "pmacctd",
            Exporter::SoftflowdIpfix => "softflowd",
        }
    }

    /// The detection window its rates are judged over (the capture's too, for comparison).
    /// pmacctd's sFlow leaves in bunches about every 0.4 s (its samples carry no time), so one
    /// second holds two or three bunches: 3,840-5,120 pps where the capture peaks at 4,025.
    /// Two seconds hold four or five, as the README advises for such an agent.
    fn window_ticks(self) -> u32 {
        match self {
            Exporter::PmacctdSflow => 20,
            Exporter::PmacctdNetflow | Exporter::SoftflowdIpfix => DetectionSettings::default().window_ticks,
        }
    }

    /// Whether it reads `captures/udp_flood.pcap` itself rather than the victim's interface.
    fn reads_the_capture(self) -> bool {
        matches!(self, Exporter::PmacctdNetflow)
    }

    fn start(self, net: &Netns, dir: &Scratch) -> Proc {
        let log = dir.path("exporter.log");
        let pmacctd = |plugin: &str, ready: &str| {
            let conf = dir.path("pmacctd.conf");
            let input = match self.reads_the_capture() {
                true => format!("pcap_savefile: {}", common::repo_path("captures/udp_flood.pcap").display()),
                false => format!("pcap_interface: {}", net.victim_if),
            };
            let settings = format!("daemonize: false\n{input}\nsampling_rate: 10\n{plugin}");
            std::fs::write(&conf, settings).unwrap();
            let mut p = Proc::spawn(&net.victim, &["pmacctd", "-f", conf.to_str().unwrap()], &log);
            p.wait_for_output(ready, "pmacctd");
            p
        };
        match self {
            Exporter::PmacctdSflow => {
                pmacctd("plugins: sfprobe\nsfprobe_receiver: 127.0.0.1:6343\n", "Sampling at: 1/10")
            }
            Exporter::PmacctdNetflow => pmacctd(
                "plugins: nfprobe\nnfprobe_receiver: 127.0.0.1:2055\nnfprobe_version: 9\nnfprobe_timeouts: maxlife=1:expint=1\n",
                "Exporting flows to",
            ),
            Exporter::SoftflowdIpfix => {
                let args = ["softflowd", "-d", "-c", "none", "-p", "/dev/null", "-i", &net.victim_if];
                let more = ["-n", "127.0.0.1:4739", "-v", "10", "-s", "10", "-t", "maxlife=1", "-t", "expint=1"];
                let mut p = Proc::spawn(&net.victim, &[&args[..], &more[..]].concat(), &log);
                p.wait_for_output("Exporting flows", "softflowd");
                p
            }
        }
    }
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

/// What `exporter` makes of `captures/udp_flood.pcap` (replayed at its own pace by tcpreplay
/// into its namespace, or read by the exporter), as `tcpdump` recorded it on the loopback
/// there; None (the test skips) without the tools or root.
fn record_export(exporter: Exporter, tag: char) -> Option<(Scratch, PathBuf)> {
    let tools = [exporter.program(), "tcpdump", "tcpreplay", "ip"];
    let (_turn, net) = namespaces(&format!("{exporter:?}'s export"), &tools, tag)?;
    let dir = Scratch::new(&format!("telemetry-{exporter:?}"));
    let recording = dir.path("export.pcap");
    let (rec, port) = (recording.to_str().unwrap(), exporter.port().to_string());
    let mut tcpdump = Proc::spawn(
        &net.victim,
        &["tcpdump", "-i", "lo", "-n", "--immediate-mode", "-B", "65536", "-U", "-w", rec, "udp", "dst", "port", &port],
        &dir.path("tcpdump.log"),
    );
    tcpdump.wait_for_output("listening on", "tcpdump");
    let mut exporter_proc = exporter.start(&net, &dir);
    if !exporter.reads_the_capture() {
        send_flood(&net);
    }
    // Exporters send what they hold on their own timers: wait until the recording stops
    // growing, then stop the exporter (which sends the rest), wait until the recording has
    // it all, and stop the recorder.
    let quiet = |quiet_for: Duration| {
        let size = || std::fs::metadata(&recording).map(|m| m.len()).unwrap_or(0);
        let (mut last, mut since) = (size(), Instant::now());
        let deadline = Instant::now() + Duration::from_secs(20);
        while since.elapsed() < quiet_for && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            if size() != last {
                (last, since) = (size(), Instant::now());
            }
        }
    };
    quiet(Duration::from_secs(3));
    exporter_proc.signal(libc::SIGTERM);
    exporter_proc.wait_for(Duration::from_secs(5));
    quiet(Duration::from_secs(1));
    tcpdump.signal(libc::SIGINT);
    assert!(tcpdump.wait_for(Duration::from_secs(5)).is_some(), "tcpdump did not stop");
    assert!(tcpdump.output().contains("\n0 packets dropped by kernel"), "tcpdump lost datagrams: {}", tcpdump.output());
    Some((dir, recording))
}

type Events = [floodwatch::analyze::AttackEvent];

/// The flood the export of `exporter` shows, against the capture's: the same attacks (kind,
/// victim), offenders among the capture's sources (at least 90 % of them), and the flood's
/// packets and peak rate within 20 %, both judged over the exporter's window. Returns the
/// export's telemetry counts, the packets and peak rates (export, capture), for the test to
/// print.
fn export_shows_the_flood(exporter: Exporter, recording: PathBuf) -> (TelemetryStats, (u64, u64), (u64, u64)) {
    let capture = common::repo_path("captures/udp_flood.pcap");
    let settings = || DetectionSettings { window_ticks: exporter.window_ticks(), ..settings() };
    let (captured, _) = common::replay_files(&[capture], settings());
    let (exported, outcome) = replay_files_reading(&[recording], telemetry(), settings());
    let t = outcome.traffic.telemetry;
    assert_eq!(t.issues_total(), 0, "{exporter:?}: {t:?}");
    assert_eq!(
        common::attacked(&exported),
        common::attacked(&captured),
        "{exporter:?}: the exported flood is the flood"
    );
    assert!(exported.iter().all(|e| e.telemetry == Some(exporter.source())), "{exporter:?}: {exported:?}");
    assert!(captured.iter().all(|e| e.telemetry.is_none()));
    let sources = |events: &Events| -> std::collections::BTreeSet<IpAddr> {
        events.iter().flat_map(|e| e.offending_ips.iter().copied()).collect()
    };
    let (from_export, from_capture) = (sources(&exported), sources(&captured));
    assert!(
        from_export.is_subset(&from_capture),
        "{exporter:?}: offenders not in the capture: {:?}",
        from_export.difference(&from_capture)
    );
    assert!(
        from_export.len() * 10 >= from_capture.len() * 9,
        "{exporter:?}: {} of {} sources listed",
        from_export.len(),
        from_capture.len()
    );
    let packets = |events: &Events| common::ends(events).iter().map(|e| e.packets).sum::<u64>();
    let (estimated, counted) = (packets(&exported), packets(&captured));
    assert!(
        estimated.abs_diff(counted) * 5 <= counted,
        "{exporter:?}: {estimated} packets estimated, {counted} in the capture"
    );
    let peak = |events: &Events| events.iter().map(|e| e.peak_pps).max().unwrap_or(0);
    let (peak, captured_peak) = (peak(&exported), peak(&captured));
    assert!(
        peak.abs_diff(captured_peak) * 5 <= captured_peak,
        "{exporter:?}: peak {peak} pps, {captured_peak} in the capture"
    );
    (t, (estimated, counted), (peak, captured_peak))
}

#[test]
fn pmacctd_sflow_of_a_flood_reports_the_flood_its_sources_and_its_rate() {
    let Some((_dir, recording)) = record_export(Exporter::PmacctdSflow, 'F') else { return };
    let (t, (estimated, counted), (peak, captured_peak)) = export_shows_the_flood(Exporter::PmacctdSflow, recording);
    assert!(t.records >= 100, "pmacctd sampled {} packets: {t:?}", t.records);
    println!(
        "pmacctd sFlow 1:10: {} samples in {} datagrams; the flood: {estimated} packets estimated, {counted} in the capture; peak over 2 s {peak} pps from the samples, {captured_peak} pps in the capture",
        t.records,
        t.datagrams_total(),
    );
}

/// NetFlow v9 (pmacctd's nfprobe) and IPFIX (softflowd), each sampling 1 in 10 and cutting
/// flows every second: the flood, its sources, its packets and its peak rate within 20 %.
#[test]
fn pmacctd_netflow9_and_softflowd_ipfix_of_a_flood_report_the_flood_and_its_rate() {
    for (exporter, tag) in [(Exporter::PmacctdNetflow, 'N'), (Exporter::SoftflowdIpfix, 'I')] {
        let Some((_dir, recording)) = record_export(exporter, tag) else { return };
        let (t, (estimated, counted), (peak, captured_peak)) = export_shows_the_flood(exporter, recording);
        assert!(t.flow_records >= 40, "{exporter:?}: {} flow records: {t:?}", t.flow_records);
        println!(
            "{exporter:?} 1:10: {} flow records in {} datagrams; the flood: {estimated} packets estimated, {counted} in the capture; peak {peak} pps from the flows, {captured_peak} pps in the capture",
            t.flow_records,
            t.datagrams_total(),
        );
    }
}

/// The collector: `floodwatch run --sflow` (127.0.0.1:6343 by default) in the victim's
/// namespace receives pmacctd's sFlow of the flood as it happens and reports it, its victim
/// and its sources; `run --ipfix` (127.0.0.1:4739) likewise softflowd's IPFIX.
#[test]
fn the_collector_reports_a_flood_as_pmacctd_and_softflowd_export_it() {
    let cases = [
        (Exporter::PmacctdSflow, "--sflow", "sFlow", "estimated from packets sampled 1 in 10", 'C'),
        (
            Exporter::SoftflowdIpfix,
            "--ipfix",
            "IPFIX",
            "estimated from flow records, each flow's packets spread over its duration, sampled 1 in 10",
            'D',
        ),
    ];
    for (exporter, flag, listening, estimated, tag) in cases {
        let tools = [exporter.program(), "tcpreplay", "ip"];
        let Some((_turn, net)) = namespaces(&format!("the collector of {exporter:?}"), &tools, tag) else {
            return;
        };
        let dir = Scratch::new(&format!("telemetry-collector-{exporter:?}"));
        let alerts = dir.path("alerts.jsonl");
        let daemon = env!("CARGO_BIN_EXE_floodwatch");
        let args = [daemon, "run", "--alerts", alerts.to_str().unwrap(), "--hash-seed", "1", flag];
        let mut floodwatch = Proc::spawn(&net.victim, &args, &dir.path("floodwatch.log"));
        floodwatch.wait_for_output(&format!("collecting {listening}"), "floodwatch");
        let default = format!("127.0.0.1:{}", exporter.port());
        assert!(floodwatch.output().contains(&default), "the default address: {}", floodwatch.output());
        let mut exporter_proc = exporter.start(&net, &dir);
        send_flood(&net);
        // The alert comes as the export does: wait for it (bounded), then stop everyone.
        let deadline = Instant::now() + Duration::from_secs(20);
        while common::netns::attack_starts(&alerts).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        exporter_proc.signal(libc::SIGTERM);
        exporter_proc.wait_for(Duration::from_secs(5));
        floodwatch.signal(libc::SIGTERM);
        let status = floodwatch.wait_for(Duration::from_secs(15)).expect("floodwatch stops on SIGTERM");
        assert!(status.success(), "floodwatch: {status}\n{}", floodwatch.output());
        assert_eq!(
            common::netns::attack_starts(&alerts),
            [("udp_flood".to_string(), "198.51.100.20".to_string())],
            "{exporter:?}: {}",
            floodwatch.output()
        );
        let text = std::fs::read_to_string(&alerts).unwrap();
        let end: serde_json::Value =
            serde_json::from_str(text.lines().last().expect("an attack_end")).expect("a JSON alert");
        assert_eq!(end["event"], "attack_end");
        let offenders = end["offending_ips"].as_array().map_or(0, |a| a.len());
        assert!(offenders >= 36, "{exporter:?}: {offenders} of the flood's 40 sources listed: {end}");
        assert!(end["reason"].as_str().unwrap_or("").contains(estimated), "{end}");
        let source = exporter.source();
        assert_eq!(
            end["source"],
            serde_json::json!({"type": source.format.name(), "exporter": "127.0.0.1", "sampling_rate": 10}),
            "{end}"
        );
    }
}

/// capgen's own exporters: `capgen bench-sflow` (`bench_flood` sampled 1 in 10) and `capgen
/// bench-netflow` (its flows as NetFlow v9) give the floods the frames themselves give, on the
/// same victims, with the samples and flows another reader (tshark) finds in them.
#[test]
fn capgen_sflow_and_netflow_of_bench_flood_give_its_floods() {
    use capgen::bench::{write_bench_mix, write_bench_netflow, write_bench_sflow, BENCH_FLOOD};
    let dir = Scratch::new("telemetry-capgen");
    let frames = dir.path("bench_flood.pcap");
    let (sflow, netflow) = (dir.path("bench_sflow.pcap"), dir.path("bench_netflow.pcap"));
    let packets = 300_000;
    write_bench_mix(std::fs::File::create(&frames).unwrap(), &BENCH_FLOOD, packets).unwrap();
    let exported = write_bench_sflow(std::fs::File::create(&sflow).unwrap(), &BENCH_FLOOD, packets, 10).unwrap();
    assert_eq!(exported.samples, packets / 10);
    let metered = write_bench_netflow(std::fs::File::create(&netflow).unwrap(), &BENCH_FLOOD, packets).unwrap();
    if on_path("tshark") {
        let seen = tshark_sees(&sflow);
        assert_eq!((seen.flow_samples, seen.raw_headers), (exported.samples, exported.samples));
        let (flows, flow_packets) = tshark_flows(&netflow);
        assert_eq!((flows.len() as u64, flow_packets), (metered.records, packets));
    }
    let (captured, _) = common::replay_files(&[frames], settings());
    assert_eq!(common::attacked(&captured).len(), 3);
    let (sampled, outcome) = replay_files_reading(&[sflow], telemetry(), settings());
    let t = outcome.traffic.telemetry;
    assert_eq!((t.records, t.datagrams_total(), t.issues_total()), (exported.samples, exported.datagrams, 0), "{t:?}");
    assert_eq!(common::attacked(&sampled), common::attacked(&captured));
    let (from_flows, outcome) = replay_files_reading(&[netflow], telemetry(), settings());
    let t = outcome.traffic.telemetry;
    assert_eq!((t.flow_records, t.flow_packets, t.issues_total()), (metered.records, packets, 0), "{t:?}");
    assert_eq!(common::attacked(&from_flows), common::attacked(&captured));
}

/// A NetFlow v5 datagram whose UDP flows (source, destination, packets, bytes) all end at
/// `uptime_ms` on the exporter's clock.
fn netflow_v5(uptime_ms: u32, flows: &[([u8; 4], [u8; 4], u32, u32)]) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend(5u16.to_be_bytes());
    d.extend((flows.len() as u16).to_be_bytes());
    d.extend(uptime_ms.to_be_bytes());
    d.extend(1_768_478_400u32.to_be_bytes());
    d.resize(24, 0);
    for (src, dst, packets, bytes) in flows {
        let start = d.len();
        d.extend(src);
        d.extend(dst);
        d.resize(start + 16, 0);
        d.extend(packets.to_be_bytes());
        d.extend(bytes.to_be_bytes());
        d.extend(uptime_ms.to_be_bytes());
        d.extend(uptime_ms.to_be_bytes());
        d.extend(123u16.to_be_bytes());
        d.extend(4444u16.to_be_bytes());
        d.extend([0, 0, 17]);
        d.resize(start + 48, 0);
    }
    d
}

/// A lying exporter claims more packets toward one victim in one tick than a 32-bit counter
/// holds: 300 flows of 15 M packets (the most one flow may claim per tick). The flood is
/// reported and ends, and what its saturated counters could not hold leaves the victim's
/// window with its tick: the victim table stays consistent (a debug build checks it at every
/// eviction, and quiet destinations arriving 100 ms apart afterwards fill every bucket).
#[test]
fn a_lying_exporters_counts_saturate_a_victims_counters_and_nothing_is_left_behind() {
    let settings = DetectionSettings { max_victims: 64, ..settings() };
    let mut analyzer = floodwatch::analyze::Analyzer::new(settings);
    let mut collector = Collector::new(&TelemetrySettings::default(), FlowClock::Exporter);
    let mut stats = TelemetryStats::default();
    let exporter = IpAddr::from([192, 0, 2, 254]);
    let mut events = Vec::new();
    let mut analyze = |r: &PacketRecord, origin| {
        analyzer.set_origin(origin);
        analyzer.process(r, &mut events);
    };
    let (uptime, mut arrival) = (10_000_000, 1_768_478_400_000_000_000i64);
    for d in 0..10u8 {
        let flows: Vec<_> =
            (1..=30).map(|i| ([198, 51, 100 + d, i], [192, 0, 2, 1], 15_000_000, 1_500_000_000)).collect();
        collector.read(&netflow_v5(uptime, &flows), exporter, arrival, &mut stats, &mut analyze);
        arrival += 100_000_000;
    }
    for k in 1..400u32 {
        let quiet = [([198, 51, 101, 1], [10, 0, (k / 256) as u8, k as u8], 20, 2_000)];
        collector.read(&netflow_v5(uptime + 100 * (10 + k), &quiet), exporter, arrival, &mut stats, &mut analyze);
        arrival += 100_000_000;
    }
    collector.finish(&mut stats, &mut analyze);
    analyzer.finish(floodwatch::analyze::EndReason::EndOfInput, &mut events);
    assert_eq!((stats.flow_records, stats.flow_packets, stats.issues_total()), (699, 4_500_007_980, 0), "{stats:?}");
    let seen: Vec<_> = events.iter().map(|e| (e.event, e.kind, e.victim.to_string())).collect();
    use floodwatch::analyze::{AttackKind, EventKind};
    let flood = (AttackKind::UdpFlood, "192.0.2.1".to_string());
    assert_eq!(seen, vec![(EventKind::Start, flood.0, flood.1.clone()), (EventKind::End, flood.0, flood.1)]);
}
