use super::*;

/// One netlink message: header, then `body`, padded to 4 bytes.
fn message(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&2u16.to_ne_bytes()); // NLM_F_MULTI
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(body);
    while m.len() % 4 != 0 {
        m.push(0);
    }
    m
}

/// An `inet_diag_msg` as the kernel lays it out.
fn diag_msg(
    family: u8,
    state: u8,
    local: ([u8; 16], u16),
    remote: ([u8; 16], u16),
    inode: u32,
) -> Vec<u8> {
    let mut m = vec![family, state, 0, 0];
    m.extend_from_slice(&local.1.to_be_bytes());
    m.extend_from_slice(&remote.1.to_be_bytes());
    m.extend_from_slice(&local.0);
    m.extend_from_slice(&remote.0);
    m.extend_from_slice(&[0u8; 4 + 8]); // ifindex, cookie
    m.extend_from_slice(&[0u8; 16]); // expires, rqueue, wqueue, uid
    m.extend_from_slice(&inode.to_ne_bytes());
    assert_eq!(m.len(), MSG_LEN);
    m
}

fn v4(a: [u8; 4]) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&a);
    b
}

fn v4_mapped(a: [u8; 4]) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[10] = 0xff;
    b[11] = 0xff;
    b[12..].copy_from_slice(&a);
    b
}

#[test]
fn request_layout_matches_inet_diag_req_v2() {
    let r = dump_request(libc::AF_INET6 as u8, libc::IPPROTO_UDP as u8, 0xfff, 7);
    assert_eq!(r.len(), 72);
    assert_eq!(u32_at(&r, 0), 72, "nlmsg_len");
    assert_eq!(u16::from_ne_bytes([r[4], r[5]]), SOCK_DIAG_BY_FAMILY);
    assert_eq!(u16::from_ne_bytes([r[6], r[7]]), 0x301, "REQUEST | DUMP");
    assert_eq!(u32_at(&r, 8), 7, "seq");
    assert_eq!((r[16], r[17]), (10, 17), "family, protocol");
    assert_eq!(u32_at(&r, 20), 0xfff, "states");
    assert!(r[24..].iter().all(|&b| b == 0), "no socket id filter");
    assert_ne!(
        STATES & (1 << 6),
        0,
        "TIME_WAIT asked for: it names closed connections"
    );
    assert_eq!(STATES & (1 << 12), 0, "NEW_SYN_RECV left out");
    assert_ne!(STATES & (1 << 10), 0, "LISTEN asked for");
}

#[test]
fn batch_of_v4_and_v6_sockets_then_done() {
    let mut buf = message(
        SOCK_DIAG_BY_FAMILY,
        9,
        &diag_msg(
            2,
            1,
            (v4([10, 0, 0, 2]), 53248),
            (v4([203, 0, 113, 80]), 443),
            4242,
        ),
    );
    buf.extend(message(
        SOCK_DIAG_BY_FAMILY,
        9,
        &diag_msg(10, 10, (v4_mapped([0, 0, 0, 0]), 4444), ([0; 16], 0), 4343),
    ));
    let mut v6 = [0u8; 16];
    v6[0] = 0x20;
    v6[1] = 0x01;
    v6[2] = 0x0d;
    v6[3] = 0xb8;
    v6[15] = 1;
    buf.extend(message(
        SOCK_DIAG_BY_FAMILY,
        9,
        &diag_msg(10, 1, (v6, 40000), (v6, 443), 4444),
    ));
    let mut out = Vec::new();
    assert_eq!(parse_batch(&buf, 9, &mut out).unwrap(), Progress::More);
    assert_eq!(
        out[0],
        Socket {
            local: "10.0.0.2:53248".parse().unwrap(),
            remote: "203.0.113.80:443".parse().unwrap(),
            state: 1,
            inode: 4242,
        }
    );
    assert_eq!(
        out[1].local,
        "0.0.0.0:4444".parse().unwrap(),
        "v4-mapped shows as v4"
    );
    assert_eq!(out[1].state, 10);
    assert_eq!(out[2].remote, "[2001:db8::1]:443".parse().unwrap());

    let done = message(NLMSG_DONE, 9, &0i32.to_ne_bytes());
    assert_eq!(parse_batch(&done, 9, &mut out).unwrap(), Progress::Done);
    assert_eq!(out.len(), 3);
}

#[test]
fn messages_of_an_abandoned_dump_are_skipped() {
    let mut buf = message(
        SOCK_DIAG_BY_FAMILY,
        3,
        &diag_msg(2, 1, (v4([1, 1, 1, 1]), 1), (v4([2, 2, 2, 2]), 2), 1),
    );
    buf.extend(message(NLMSG_DONE, 3, &0i32.to_ne_bytes()));
    let mut out = Vec::new();
    assert_eq!(parse_batch(&buf, 4, &mut out).unwrap(), Progress::More);
    assert!(out.is_empty());
}

#[test]
fn kernel_error_and_garbage_are_errors() {
    let mut body = (-libc::ENOENT).to_ne_bytes().to_vec();
    body.extend_from_slice(&dump_request(2, 17, STATES, 5)[..NLMSG_HDRLEN]);
    let err = parse_batch(&message(NLMSG_ERROR, 5, &body), 5, &mut Vec::new()).unwrap_err();
    assert!(
        matches!(err, DiagError::Refused(e) if e == libc::ENOENT),
        "{err}"
    );

    let mut short = message(SOCK_DIAG_BY_FAMILY, 5, &[2, 1, 0, 0]);
    assert!(matches!(
        parse_batch(&short, 5, &mut Vec::new()),
        Err(DiagError::Malformed(_))
    ));
    short[0] = 200; // length past the end of the buffer
    assert!(matches!(
        parse_batch(&short, 5, &mut Vec::new()),
        Err(DiagError::Malformed(_))
    ));
    let mut odd = diag_msg(2, 1, (v4([1, 1, 1, 1]), 1), (v4([2, 2, 2, 2]), 2), 1);
    odd[0] = 99; // unknown family
    assert!(parse_socket(&odd).is_err());
}

#[test]
fn an_error_code_of_i32_min_does_not_overflow() {
    // Found by fuzzing (fuzz/ kernel_messages): negating i32::MIN panicked.
    let body = i32::MIN.to_ne_bytes();
    let err = parse_batch(&message(NLMSG_ERROR, 5, &body), 5, &mut Vec::new()).unwrap_err();
    assert!(matches!(err, DiagError::Refused(i32::MAX)), "{err}");
}

#[test]
fn lists_a_real_listener_and_connection_of_this_test() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::net::TcpStream::connect(addr).unwrap();
    let (_server, _) = listener.accept().unwrap();
    let mut diag = DiagSocket::open().unwrap();
    let mut out = Vec::new();
    diag.dump(libc::AF_INET as u8, libc::IPPROTO_TCP as u8, &mut out)
        .unwrap();
    let listening = out
        .iter()
        .find(|s| s.local == addr && s.state == super::super::parse::TCP_LISTEN)
        .expect("the listener is listed");
    assert_ne!(listening.inode, 0);
    let mine = out
        .iter()
        .find(|s| s.local == client.local_addr().unwrap())
        .expect("the client side is listed");
    assert_eq!((mine.remote, mine.state), (addr, 1));
    assert_ne!(mine.inode, 0);
    // A second dump on the same socket gives the same view.
    let mut again = Vec::new();
    diag.dump(libc::AF_INET as u8, libc::IPPROTO_TCP as u8, &mut again)
        .unwrap();
    assert!(again.contains(mine));
}
