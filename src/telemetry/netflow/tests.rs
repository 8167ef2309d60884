use super::*;

const EXPORTER: IpKey = IpKey(0xffff_c000_02fe); // 192.0.2.254
const T0: i64 = 1_768_478_400_000_000_000;

fn be16s(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_be_bytes()).collect()
}

/// A set: id, length, body padded to 4 bytes.
fn set(id: u16, body: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    body.resize(body.len().next_multiple_of(4), 0);
    [be16s(&[id, (body.len() + 4) as u16]), body].concat()
}

fn v9(sets: &[Vec<u8>]) -> Vec<u8> {
    let header =
        [be16s(&[V9, sets.len() as u16]), 1_000_000u32.to_be_bytes().to_vec(), vec![0; 8], 7u32.to_be_bytes().to_vec()];
    [header.concat(), sets.concat()].concat()
}

fn ipfix(sets: &[Vec<u8>]) -> Vec<u8> {
    let body = sets.concat();
    let header = [be16s(&[IPFIX, (16 + body.len()) as u16]), vec![0; 8], 3u32.to_be_bytes().to_vec()];
    [header.concat(), body].concat()
}

/// A template body: id, field count, (type, length) pairs.
fn template(id: u16, fields: &[(u16, u16)]) -> Vec<u8> {
    let mut t = be16s(&[id, fields.len() as u16]);
    for &(ie, len) in fields {
        t.extend(be16s(&[ie, len]));
    }
    t
}

/// The fields of a plain IPv4 flow: src, dst, ports, protocol, flags, packets, bytes, first, last.
const FLOW_FIELDS: [(u16, u16); 10] =
    [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (6, 1), (2, 4), (1, 4), (22, 4), (21, 4)];

/// A data record of [`FLOW_FIELDS`].
fn flow_data(
    (src, dst): ([u8; 4], [u8; 4]),
    ports: (u16, u16),
    (protocol, flags): (u8, u8),
    (packets, bytes): (u32, u32),
    ms: (u32, u32),
) -> Vec<u8> {
    let mut r = [src, dst].concat();
    r.extend(be16s(&[ports.0, ports.1]));
    r.extend([protocol, flags]);
    for n in [packets, bytes, ms.0, ms.1] {
        r.extend(n.to_be_bytes());
    }
    r
}

fn read(data: &[u8], templates: &mut Templates) -> (Vec<FlowRecord>, TelemetryStats, Result<(), TelemetryIssue>) {
    let mut stats = TelemetryStats::default();
    let mut flows = Vec::new();
    let outcome = read_datagram(data, EXPORTER, T0, templates, &mut stats, &mut |f, _| flows.push(*f));
    (flows, stats, outcome)
}

fn v4(a: [u8; 4]) -> IpKey {
    IpKey::from_v4(a)
}

#[test]
fn netflow_v5_records_are_read_with_the_header_sampling_rate() {
    let mut header = be16s(&[V5, 2]);
    header.extend([0; 18]);
    header.extend(be16s(&[0x4000 | 100])); // mode 1, 1 in 100
    let record = |src: [u8; 4], dport: u16, protocol: u8| {
        let mut r = [src, [192, 0, 2, 1], [0; 4]].concat();
        r.extend([0; 4]);
        r.extend(30u32.to_be_bytes());
        r.extend(3_000u32.to_be_bytes());
        r.extend(5_000u32.to_be_bytes());
        r.extend(7_500u32.to_be_bytes());
        r.extend(be16s(&[53, dport]));
        r.extend([0, 0x02, protocol, 0]);
        r.extend([0; 8]);
        r
    };
    let data = [header, record([198, 51, 100, 7], 4444, 17), record([198, 51, 100, 8], 0x0800, 1)].concat();
    let (flows, stats, outcome) = read(&data, &mut Templates::default());
    assert_eq!(outcome, Ok(()));
    assert_eq!((stats.datagrams[Protocol::NetflowV5 as usize], stats.flow_records), (1, 2));
    let f = flows[0];
    assert_eq!(
        (f.src, f.dst, f.src_port, f.dst_port, f.protocol),
        (v4([198, 51, 100, 7]), v4([192, 0, 2, 1]), 53, 4444, 17)
    );
    assert_eq!((f.packets, f.bytes, f.duration_ms, f.sampling_rate, f.tcp_flags), (30, 3_000, 2_500, 100, 2));
    // An ICMP flow's type sits in the destination port's high byte.
    assert_eq!((flows[1].protocol, flows[1].icmp_type), (1, 8));
    for cut in 0..data.len() {
        let (_, _, outcome) = read(&data[..cut], &mut Templates::default());
        assert_eq!(outcome, Err(TelemetryIssue::Truncated), "cut at {cut}");
    }
}

#[test]
fn v9_data_is_read_by_its_template_even_when_it_came_first() {
    let data =
        set(300, &flow_data(([198, 51, 100, 7], [192, 0, 2, 1]), (40000, 443), (6, 0x02), (1, 60), (900_000, 900_000)));
    let mut templates = Templates::default();
    let (flows, stats, _) = read(&v9(std::slice::from_ref(&data)), &mut templates);
    assert!(flows.is_empty());
    assert_eq!(stats.flow_records, 0);
    // The template comes, with more data: the held set is read first.
    let more =
        set(300, &flow_data(([198, 51, 100, 9], [192, 0, 2, 1]), (40001, 443), (6, 0x1b), (12, 4_000), (1_000, 4_000)));
    let (flows, stats, outcome) = read(&v9(&[set(0, &template(300, &FLOW_FIELDS)), more]), &mut templates);
    assert_eq!(outcome, Ok(()));
    assert_eq!((stats.templates, stats.flow_records), (1, 2));
    assert_eq!(flows[0].src, v4([198, 51, 100, 7]));
    let f = flows[1];
    assert_eq!((f.src_port, f.dst_port, f.protocol, f.tcp_flags), (40001, 443, 6, 0x1b));
    assert_eq!((f.packets, f.bytes, f.duration_ms, f.sampling_rate), (12, 4_000, 3_000, 1));
    // The same template id from another exporter is another template.
    let mut stats = TelemetryStats::default();
    let other = IpKey::from_v4([192, 0, 2, 253]);
    read_datagram(&v9(&[data]), other, T0, &mut templates, &mut stats, &mut |_, _| panic!("no template of its own"))
        .unwrap();
}

#[test]
fn sampling_announced_in_options_data_applies_to_the_domains_flows() {
    // v9 options template 257: scope System (type 1, 4 bytes), then FLOW_SAMPLER_RANDOM_INTERVAL.
    let options = [be16s(&[257, 4, 4]), be16s(&[1, 4, 50, 4])].concat();
    let rate = |n: u32| set(257, &[vec![0; 4], n.to_be_bytes().to_vec()].concat());
    let flow = set(300, &flow_data(([198, 51, 100, 7], [192, 0, 2, 1]), (123, 4444), (17, 0), (5, 2_500), (0, 0)));
    let mut templates = Templates::default();
    let datagram = v9(&[set(0, &template(300, &FLOW_FIELDS)), set(1, &options), rate(1_000), flow.clone()]);
    let (flows, stats, _) = read(&datagram, &mut templates);
    assert_eq!((stats.options_records, flows[0].sampling_rate), (1, 1_000));
    // Rates no exporter uses are counted and leave the known one.
    for bad in [0, u32::MAX] {
        let (flows, stats, _) = read(&v9(&[rate(bad), flow.clone()]), &mut templates);
        assert_eq!((stats.bad_sampling_rates, flows[0].sampling_rate), (1, 1_000), "{bad}");
    }
}

#[test]
fn a_configured_rate_stands_where_the_exporter_announces_none() {
    let configured = SamplingRates::new([(EXPORTER.to_ip(), 100)]);
    let options = [be16s(&[257, 4, 4]), be16s(&[1, 4, 50, 4])].concat();
    let flow = set(300, &flow_data(([198, 51, 100, 7], [192, 0, 2, 1]), (123, 4444), (17, 0), (5, 2_500), (0, 0)));
    let mut templates = Templates::new(FlowClock::Exporter, configured.clone());
    let (flows, _, _) = read(&v9(&[set(0, &template(300, &FLOW_FIELDS)), flow.clone()]), &mut templates);
    assert_eq!(flows[0].sampling_rate, 100);
    // Options data says otherwise: the exporter knows best.
    let announced = set(257, &[vec![0; 4], 1_000u32.to_be_bytes().to_vec()].concat());
    let (flows, _, _) = read(&v9(&[set(1, &options), announced, flow]), &mut templates);
    assert_eq!(flows[0].sampling_rate, 1_000);
    // NetFlow v5 with no rate in its header.
    let mut v5 = be16s(&[V5, 1]);
    v5.resize(v5::HEADER_LEN + v5::RECORD_LEN, 0);
    v5[v5::HEADER_LEN + 19] = 1; // one packet
    let (flows, _, _) = read(&v5, &mut Templates::new(FlowClock::Exporter, configured));
    assert_eq!((flows[0].packets, flows[0].sampling_rate), (1, 100));
    assert_eq!(read(&v5, &mut Templates::default()).0[0].sampling_rate, 1);
}

#[test]
fn ipfix_reads_variable_length_and_enterprise_fields_and_withdrawals() {
    // src/dst IPv6, a variable-length string, an enterprise field, ports, protocol, flags (2
    // bytes), packets (8 bytes), bytes (reduced to 4), start/end in milliseconds.
    let mut t = be16s(&[400, 12, 27, 16, 28, 16, 82, 0xffff, 0x8000 | 5, 4]);
    t.extend(12_345u32.to_be_bytes());
    t.extend(be16s(&[7, 2, 11, 2, 4, 1, 6, 2, 2, 8, 1, 4, 152, 8]));
    t.extend(be16s(&[153, 8]));
    let src = "2001:db8::7".parse::<std::net::Ipv6Addr>().unwrap().octets();
    let dst = "2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap().octets();
    let mut r = [src, dst].concat();
    r.extend([5]);
    r.extend(b"eth0/");
    r.extend([0xaa; 4]);
    r.extend(be16s(&[123, 4444]));
    r.extend([17, 0, 0]);
    r.extend(1_000_000u64.to_be_bytes());
    r.extend(468_000_000u32.to_be_bytes());
    r.extend(1_768_478_400_000u64.to_be_bytes());
    r.extend(1_768_478_401_500u64.to_be_bytes());
    let mut templates = Templates::default();
    let (flows, stats, outcome) = read(&ipfix(&[set(2, &t), set(400, &r)]), &mut templates);
    assert_eq!(outcome, Ok(()));
    assert_eq!((stats.datagrams[Protocol::Ipfix as usize], stats.flow_records), (1, 1));
    let f = flows[0];
    assert_eq!((f.src, f.dst), (IpKey::from_v6(src), IpKey::from_v6(dst)));
    assert_eq!((f.src_port, f.dst_port, f.protocol), (123, 4444, 17));
    assert_eq!((f.packets, f.bytes, f.duration_ms), (1_000_000, 468_000_000, 1_500));
    // Withdrawn (a template of no fields): its data waits again.
    let (flows, _, _) = read(&ipfix(&[set(2, &be16s(&[400, 0])), set(400, &r)]), &mut templates);
    assert!(flows.is_empty());
    assert!(templates.is_empty());
}

#[test]
fn a_template_flood_from_one_exporter_fills_its_share_and_no_more() {
    let mut templates = Templates::default();
    let mut refused = 0;
    for batch in 0..40u16 {
        let sets: Vec<Vec<u8>> = (0..100u16).map(|i| set(0, &template(256 + batch * 100 + i, &FLOW_FIELDS))).collect();
        let (_, stats, outcome) = read(&v9(&sets), &mut templates);
        assert_eq!(outcome, Ok(()));
        refused += stats.templates_refused;
    }
    assert_eq!((templates.len(), refused), (MAX_TEMPLATES_PER_EXPORTER as usize, 4_000 - 256));
    // Another exporter's templates are still kept.
    let mut stats = TelemetryStats::default();
    let other = IpKey::from_v4([192, 0, 2, 253]);
    read_datagram(&v9(&[set(0, &template(300, &FLOW_FIELDS))]), other, T0, &mut templates, &mut stats, &mut |_, _| {})
        .unwrap();
    assert_eq!((templates.len(), stats.templates_refused), (257, 0));
    // Data held for templates that never come is bounded, and counted as it is dropped.
    for i in 0..1_000u16 {
        assert_eq!(read(&v9(&[set(3_000 + i, &[0; 40])]), &mut templates).2, Ok(()));
    }
    assert!(templates.held.len() <= MAX_HELD_SETS && templates.held_bytes <= MAX_HELD_BYTES);
}

#[test]
fn cut_or_lying_datagrams_are_issues_never_panics() {
    let whole = v9(&[
        set(0, &template(300, &FLOW_FIELDS)),
        set(300, &flow_data(([198, 51, 100, 7], [192, 0, 2, 1]), (1, 2), (17, 0), (1, 60), (0, 0))),
    ]);
    for cut in 0..whole.len() {
        let _ = read(&whole[..cut], &mut Templates::default());
    }
    // A set longer than the datagram; one shorter than its own header; a template id below 256.
    let mut lying = whole.clone();
    lying[22] = 0xff;
    assert_eq!(read(&lying, &mut Templates::default()).2, Err(TelemetryIssue::Truncated));
    lying[22..24].copy_from_slice(&[0, 2]);
    assert_eq!(read(&lying, &mut Templates::default()).2, Err(TelemetryIssue::Malformed));
    let low = v9(&[set(0, &template(255, &FLOW_FIELDS))]);
    assert_eq!(read(&low, &mut Templates::default()).2, Err(TelemetryIssue::Malformed));
    // An IPFIX length beyond the datagram; an unknown version.
    let mut long = ipfix(&[]);
    long[3] = 200;
    assert_eq!(read(&long, &mut Templates::default()).2, Err(TelemetryIssue::Truncated));
    assert_eq!(read(&be16s(&[8, 0, 0, 0]), &mut Templates::default()).2, Err(TelemetryIssue::UnknownVersion));
}

/// The flows' ends, on the analyzer's clock, of v9 flows ending at `ends_ms` of the exporter's
/// uptime, each in a datagram arriving at `T0 + arrivals_ms`.
fn ends(clock: FlowClock, flows: &[(u32, i64)]) -> Vec<i64> {
    let mut templates = Templates::new(clock, SamplingRates::default());
    let fields = set(0, &template(300, &FLOW_FIELDS));
    let mut ends = Vec::new();
    for &(end_ms, arrival_ms) in flows {
        let data = flow_data(([198, 51, 100, 7], [192, 0, 2, 1]), (123, 9), (17, 0), (1, 60), (end_ms - 500, end_ms));
        let datagram = v9(&[fields.clone(), set(300, &data)]);
        let mut stats = TelemetryStats::default();
        let arrival = T0 + arrival_ms * 1_000_000;
        read_datagram(&datagram, EXPORTER, arrival, &mut templates, &mut stats, &mut |f, _| ends.push(f.end_ns))
            .unwrap();
    }
    ends.iter().map(|ns| (ns - T0) / 1_000_000).collect()
}

#[test]
fn flows_are_placed_by_their_exporters_clock_from_its_first_flows_arrival() {
    // An exporter that read a capture sends its eight seconds of flows at once: a replay
    // places them as they were metered, its uptime wrapping at 2^32 ms included.
    let at_once = [(10_000, 0), (14_000, 0), (18_000, 0)];
    assert_eq!(ends(FlowClock::Exporter, &at_once), [0, 4_000, 8_000]);
    let wrapping = [(u32::MAX - 999, 0), (1_000, 0)];
    assert_eq!(ends(FlowClock::Exporter, &wrapping), [0, 2_000]);
    // Live, a flow cannot end after its record arrived: the clock is anchored again on the
    // flow that says so (the first waited longer to be exported).
    assert_eq!(ends(FlowClock::Live, &at_once), [0, 0, 0]);
    let exported_late_then_early = [(10_000, 3_000), (20_000, 11_000), (30_000, 21_000)];
    assert_eq!(ends(FlowClock::Live, &exported_late_then_early), [3_000, 11_000, 21_000]);
    // An hour off its anchor is another run of the exporter, anchored anew.
    assert_eq!(ends(FlowClock::Exporter, &[(10_000, 0), (20_000_000, 5_000)]), [0, 5_000]);
}
