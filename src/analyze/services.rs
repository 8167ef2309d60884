//! Well-known reflector services: UDP source ports that answer small requests with large
//! responses, so that spoofed requests turn them into amplifiers aimed at a victim.

/// (name, source port). Several ports may share one name.
pub const REFLECTORS: &[(&str, u16)] = &[
    ("qotd", 17),
    ("chargen", 19),
    ("dns", 53),
    ("tftp", 69),
    ("portmap", 111),
    ("ntp", 123),
    ("netbios", 137),
    ("snmp", 161),
    ("cldap", 389),
    ("isakmp", 500),
    ("rip", 520),
    ("openvpn", 1194),
    ("mssql", 1434),
    ("ssdp", 1900),
    ("ard", 3283),
    ("stun", 3478),
    ("ws-discovery", 3702),
    ("isakmp", 4500),
    ("mdns", 5353),
    ("coap", 5683),
    ("ubiquiti", 10001),
    ("memcached", 11211),
    ("steam", 27015),
    ("dvr-discovery", 37810),
    ("bacnet", 47808),
];

/// Index into [`REFLECTORS`] for a source port, as a dense lookup table built once.
pub struct ServiceTable {
    by_port: Box<[u8; 65536]>,
}

/// Marks a port that is not a reflector service.
pub const NO_SERVICE: u8 = u8::MAX;

impl ServiceTable {
    pub fn new() -> ServiceTable {
        let mut by_port = Box::new([NO_SERVICE; 65536]);
        for (i, &(_, port)) in REFLECTORS.iter().enumerate() {
            by_port[port as usize] = i as u8;
        }
        ServiceTable { by_port }
    }

    /// The reflector entry for a UDP source port, or [`NO_SERVICE`].
    #[inline(always)]
    pub fn lookup(&self, src_port: u16) -> u8 {
        self.by_port[src_port as usize]
    }

    pub fn name(index: u8) -> &'static str {
        REFLECTORS.get(index as usize).map(|r| r.0).unwrap_or("unknown")
    }

    pub fn port(index: u8) -> Option<u16> {
        REFLECTORS.get(index as usize).map(|r| r.1)
    }
}

impl Default for ServiceTable {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_knows_the_classic_amplifiers() {
        let t = ServiceTable::new();
        for (port, name) in
            [(53, "dns"), (123, "ntp"), (11211, "memcached"), (1900, "ssdp"), (389, "cldap"), (4500, "isakmp")]
        {
            assert_eq!(ServiceTable::name(t.lookup(port)), name);
        }
        assert_eq!(t.lookup(40000), NO_SERVICE);
        assert!(REFLECTORS.len() >= 15);
    }
}
