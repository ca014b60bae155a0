//! The identity QEMU 10.0.2's `tls-authz` checks: the subject DN of the peer certificate, formatted exactly as
//! GnuTLS 3.7.9's `gnutls_x509_crt_get_dn` does (QEMU `crypto/tlssession.c`,
//! `qcrypto_tls_session_check_certificate`, first certificate of the peer chain).
//!
//! Measured against QEMU 10.0.2 linked with GnuTLS 3.7.9 / libtasn1 4.19.0 (see /work/notes/dn-measured.md); the
//! test vectors below are those measurements. GnuTLS master (3.8.x) has the same OID table; its `dn.c` and
//! `common.c` differ from 3.7.9 in formatting only, as far as a read of the diff shows.
//!
//! # Format
//! - RDNs in **certificate order**, most significant first (`C=GB,L=London,O=Example Org,CN=client.example.com`),
//!   not RFC 4514's reversed order. Adjacent RDNs are joined with `,`, the values of a multi-valued RDN with `+` in
//!   their encoded order (no sorting). No spaces are added.
//! - Attribute type: GnuTLS's short name (`CN`, `C`, `L`, `ST`, `O`, `OU`, `DC`, `UID`, `EMAIL`, `serialNumber`,
//!   `surName`, …, the table `ATTRIBUTES` below); otherwise the dotted OID (`1.2.840.113549.1.9.2`).
//! - Value, by the attribute's entry in GnuTLS's table:
//!   - *DirectoryString* types (CN, O, OU, L, ST, UID, street, title, …): UTF8String and PrintableString bytes as
//!     they are (no charset or UTF-8 validation); TeletexString as is when every byte is printable ASCII
//!     (0x20..=0x7e), otherwise `#` + hex of the content; BMPString converted to UTF-8 (a trailing U+0000 is
//!     dropped, an odd last byte ignored; on a lone surrogate `#` + hex of the content); UniversalString always
//!     `#` + hex of the content. Any other tag (IA5String, INTEGER, …) or a result containing NUL gives the
//!     unknown form below. A value whose DER length byte is 0 (empty UTF8String, even an empty IA5String or
//!     NULL) makes the whole DN fail.
//!   - Fixed-type attributes (C, serialNumber, dnQualifier, telephoneNumber: PrintableString; DC, EMAIL:
//!     IA5String; XmppAddr: UTF8String; OGRN, SNILS, OGRNIP, INN: NumericString; friendlyName: BMPString;
//!     localKeyId, messageDigest: OCTET STRING): the content if the tag matches and it is not empty (BMP converted
//!     as above), otherwise the unknown form. Contents are not checked against the type's charset.
//!   - challengePassword: PrintableString or UTF8String content, otherwise the unknown form.
//!   - Unknown OIDs (and the fallbacks above): `#` + lowercase hex of the **whole DER value** (tag, length,
//!     content), not escaped.
//! - Escaping (all decoded values, including the `#hex` forms made from TeletexString / BMPString /
//!   UniversalString content, which therefore come out as `\#…`): a backslash before each of
//!   `,` `+` `"` `\` `<` `>` `;`, before a leading `#` or space, and before a trailing space. Nothing else is
//!   escaped: `=`, control characters and non-ASCII bytes are copied raw.
//!
//! # Failures (`None`)
//! `None` means QEMU would not get a DN either, so the connection must be refused:
//! - the input is not a DER certificate (bad tag or length, indefinite length, trailing bytes after the
//!   certificate, an RDN that is not a SET, an AttributeTypeAndValue that is not exactly OID + value, an OID
//!   that is empty, starts a sub-identifier with 0x80 or overflows 64 bits);
//! - GnuTLS fails: empty subject (`The requested data were not available.`), a zero-length DirectoryString
//!   value, a NUL in an OCTET STRING value (`Cannot get client distinguished name: …`);
//! - QEMU breaks (deliberate difference, we refuse instead): an attribute OID whose dotted form is longer than
//!   126 characters makes GnuTLS return `GNUTLS_E_SHORT_MEMORY_BUFFER` without a larger size, and QEMU's
//!   `requery` loop then **spins forever** (main loop hung); a subject made only of empty RDNs gives an empty DN
//!   and GnuTLS **asserts** (`dn.c:303: _gnutls_x509_parse_dn: Assertion 'dn.data != NULL'`), aborting QEMU.
//!
//! Other GnuTLS quirks kept: empty RDN SETs are skipped, but one at the end still leaves the `,` before it
//! (`CN=x,`); OID arcs of 2^63 and more print as negative numbers (libtasn1 formats them as `int64_t`); an
//! unterminated last sub-identifier is ignored.
//!
//! Only the subject is read; the signature, validity and extensions are the TLS stack's business.

/// One of GnuTLS's known attribute types: dotted OID, printed name (`None`: printed as the OID), value rule.
type Attribute = (&'static str, Option<&'static str>, Kind);

/// How GnuTLS decodes an attribute value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `PKIX1.DirectoryString` (TeletexString, PrintableString, UniversalString, UTF8String, BMPString).
    Directory,
    /// `PKIX1.pkcs-9-challengePassword` (PrintableString, UTF8String).
    ChallengePassword,
    /// A single string type, given by its (universal, primitive) DER tag.
    Fixed(u8),
}

/// DER tag of a UTF8String.
const UTF8_STRING: u8 = 0x0c;
/// DER tag of a NumericString.
const NUMERIC_STRING: u8 = 0x12;
/// DER tag of a PrintableString.
const PRINTABLE_STRING: u8 = 0x13;
/// DER tag of a TeletexString (T61String).
const TELETEX_STRING: u8 = 0x14;
/// DER tag of an IA5String.
const IA5_STRING: u8 = 0x16;
/// DER tag of a UniversalString.
const UNIVERSAL_STRING: u8 = 0x1c;
/// DER tag of a BMPString.
const BMP_STRING: u8 = 0x1e;
/// DER tag of an OCTET STRING.
const OCTET_STRING: u8 = 0x04;
/// DER tag of an OBJECT IDENTIFIER.
const OBJECT_IDENTIFIER: u8 = 0x06;
/// DER tag of a SEQUENCE.
const SEQUENCE: u8 = 0x30;
/// DER tag of a SET.
const SET: u8 = 0x31;

/// GnuTLS 3.7.9's `_oid2str` table (lib/x509/common.c), in its order.
const ATTRIBUTES: &[Attribute] = &[
    ("1.3.6.1.5.5.7.9.2", Some("placeOfBirth"), Kind::Directory),
    ("1.3.6.1.5.5.7.9.3", Some("gender"), Kind::Fixed(PRINTABLE_STRING)),
    (
        "1.3.6.1.5.5.7.9.4",
        Some("countryOfCitizenship"),
        Kind::Fixed(PRINTABLE_STRING),
    ),
    (
        "1.3.6.1.5.5.7.9.5",
        Some("countryOfResidence"),
        Kind::Fixed(PRINTABLE_STRING),
    ),
    ("2.5.4.6", Some("C"), Kind::Fixed(PRINTABLE_STRING)),
    ("2.5.4.9", Some("street"), Kind::Directory),
    ("2.5.4.12", Some("title"), Kind::Directory),
    ("2.5.4.10", Some("O"), Kind::Directory),
    ("2.5.4.11", Some("OU"), Kind::Directory),
    ("2.5.4.3", Some("CN"), Kind::Directory),
    ("2.5.4.7", Some("L"), Kind::Directory),
    ("2.5.4.8", Some("ST"), Kind::Directory),
    ("2.5.4.13", Some("description"), Kind::Directory),
    ("2.5.4.5", Some("serialNumber"), Kind::Fixed(PRINTABLE_STRING)),
    ("2.5.4.20", Some("telephoneNumber"), Kind::Fixed(PRINTABLE_STRING)),
    ("2.5.4.4", Some("surName"), Kind::Directory),
    ("2.5.4.43", Some("initials"), Kind::Directory),
    ("2.5.4.44", Some("generationQualifier"), Kind::Directory),
    ("2.5.4.42", Some("givenName"), Kind::Directory),
    ("2.5.4.65", Some("pseudonym"), Kind::Directory),
    ("2.5.4.46", Some("dnQualifier"), Kind::Fixed(PRINTABLE_STRING)),
    ("2.5.4.17", Some("postalCode"), Kind::Directory),
    ("2.5.4.41", Some("name"), Kind::Directory),
    ("2.5.4.15", Some("businessCategory"), Kind::Directory),
    ("0.9.2342.19200300.100.1.25", Some("DC"), Kind::Fixed(IA5_STRING)),
    ("0.9.2342.19200300.100.1.1", Some("UID"), Kind::Directory),
    ("1.2.840.113556.1.4.656", Some("userPrincipalName"), Kind::Directory),
    (
        "1.3.6.1.4.1.311.60.2.1.1",
        Some("jurisdictionOfIncorporationLocalityName"),
        Kind::Directory,
    ),
    (
        "1.3.6.1.4.1.311.60.2.1.2",
        Some("jurisdictionOfIncorporationStateOrProvinceName"),
        Kind::Directory,
    ),
    (
        "1.3.6.1.4.1.311.60.2.1.3",
        Some("jurisdictionOfIncorporationCountryName"),
        Kind::Fixed(PRINTABLE_STRING),
    ),
    ("1.2.840.113549.1.9.1", Some("EMAIL"), Kind::Fixed(IA5_STRING)),
    ("1.2.840.113549.1.9.7", None, Kind::ChallengePassword),
    ("1.2.840.113549.1.9.20", None, Kind::Fixed(BMP_STRING)),
    ("1.2.840.113549.1.9.21", None, Kind::Fixed(OCTET_STRING)),
    ("1.2.840.113549.1.9.4", None, Kind::Fixed(OCTET_STRING)),
    ("1.3.6.1.5.5.7.8.5", Some("XmppAddr"), Kind::Fixed(UTF8_STRING)),
    ("1.2.643.100.1", Some("OGRN"), Kind::Fixed(NUMERIC_STRING)),
    ("1.2.643.100.3", Some("SNILS"), Kind::Fixed(NUMERIC_STRING)),
    ("1.2.643.100.5", Some("OGRNIP"), Kind::Fixed(NUMERIC_STRING)),
    ("1.2.643.3.131.1.1", Some("INN"), Kind::Fixed(NUMERIC_STRING)),
];

/// Longest dotted OID GnuTLS can read back (its `MAX_OID_SIZE` buffer is 128 bytes, read with size - 1).
const MAX_OID_TEXT: usize = 126;

/// The subject DN of a DER-encoded X.509 certificate, formatted as GnuTLS does; None if the DER is not a
/// certificate.
///
/// Also `None` wherever QEMU would fail to get a DN (see the module documentation). GnuTLS copies value bytes
/// raw, so its DN need not be UTF-8; here invalid sequences become U+FFFD (use [`subject_dn_bytes`] for the exact
/// bytes). Such a DN cannot equal any QMP-given identity in QEMU either.
#[must_use]
pub fn subject_dn(cert_der: &[u8]) -> Option<String> {
    subject_dn_bytes(cert_der).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// The exact bytes of [`subject_dn`]: what GnuTLS returns, before any UTF-8 conversion.
#[must_use]
pub fn subject_dn_bytes(cert_der: &[u8]) -> Option<Vec<u8>> {
    let (cert, rest) = read_tlv(cert_der)?;
    if !rest.is_empty() || cert.tag != Some(SEQUENCE) {
        return None;
    }
    let mut c = cert.content;
    let tbs = expect(&mut c, SEQUENCE)?;
    expect(&mut c, SEQUENCE)?; // signatureAlgorithm
    expect(&mut c, 0x03)?; // signatureValue BIT STRING
    if !c.is_empty() {
        return None;
    }
    let mut t = tbs.content;
    let (first, after) = read_tlv(t)?;
    if first.tag == Some(0xa0) {
        t = after; // [0] EXPLICIT version
    }
    expect(&mut t, 0x02)?; // serialNumber
    expect(&mut t, SEQUENCE)?; // signature
    expect(&mut t, SEQUENCE)?; // issuer
    expect(&mut t, SEQUENCE)?; // validity
    let subject = expect(&mut t, SEQUENCE)?;
    name_dn(subject.content)
}

/// Formats the contents of a DER `Name` (the RDNSequence without its SEQUENCE header) as GnuTLS does.
///
/// `None` if it is malformed or GnuTLS would fail on it.
fn name_dn(rdn_sequence: &[u8]) -> Option<Vec<u8>> {
    // Parse everything first: GnuTLS rejects a malformed name at import, before formatting anything.
    let mut rdns: Vec<Vec<(String, &[u8])>> = Vec::new();
    let mut c = rdn_sequence;
    while !c.is_empty() {
        let rdn = expect(&mut c, SET)?;
        let mut atvs = Vec::new();
        let mut r = rdn.content;
        while !r.is_empty() {
            let atv = expect(&mut r, SEQUENCE)?;
            let mut a = atv.content;
            let oid = expect(&mut a, OBJECT_IDENTIFIER)?;
            let (value, rest) = read_tlv(a)?;
            if !rest.is_empty() {
                return None;
            }
            atvs.push((oid_text(oid.content)?, value.raw));
        }
        rdns.push(atvs);
    }
    if rdns.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for (i, rdn) in rdns.iter().enumerate() {
        for (j, (oid, value)) in rdn.iter().enumerate() {
            if oid.len() > MAX_OID_TEXT {
                return None;
            }
            let entry = ATTRIBUTES.iter().find(|a| a.0 == oid.as_str());
            match entry.and_then(|e| e.1) {
                Some(short) => out.extend_from_slice(short.as_bytes()),
                None => out.extend_from_slice(oid.as_bytes()),
            }
            out.push(b'=');
            out.extend_from_slice(&attribute_value(entry.map(|e| e.2), value)?);
            if j + 1 < rdn.len() {
                out.push(b'+');
            } else if i + 1 < rdns.len() {
                out.push(b',');
            }
        }
    }
    if out.is_empty() {
        return None; // GnuTLS asserts and QEMU aborts here
    }
    Some(out)
}

/// The printed form of one attribute value (`value` is its whole DER TLV); `None` if GnuTLS fails the DN.
fn attribute_value(kind: Option<Kind>, value: &[u8]) -> Option<Vec<u8>> {
    let decoded = match kind {
        None => None,
        Some(Kind::Directory) => {
            if value.get(1) == Some(&0) {
                return None; // "Empty DirectoryString"
            }
            decode_choice(
                &[
                    TELETEX_STRING,
                    PRINTABLE_STRING,
                    UNIVERSAL_STRING,
                    UTF8_STRING,
                    BMP_STRING,
                ],
                value,
            )
        }
        Some(Kind::ChallengePassword) => decode_choice(&[PRINTABLE_STRING, UTF8_STRING], value),
        Some(Kind::Fixed(tag)) => decode_fixed(tag, value),
    };
    match decoded {
        Some(s) => escape(&s),
        None => Some(hash_hex(value)),
    }
}

/// GnuTLS `decode_complex_string`: one of `tags`, not empty, no NUL in the result; `None` means "print as hex".
fn decode_choice(tags: &[u8], value: &[u8]) -> Option<Vec<u8>> {
    let (t, _) = read_tlv(value)?;
    let tag = t.tag.filter(|tag| tags.contains(tag))?;
    if t.content.is_empty() {
        return None;
    }
    let s = match tag {
        TELETEX_STRING if t.content.iter().all(|b| (0x20..=0x7e).contains(b)) => t.content.to_vec(),
        TELETEX_STRING | UNIVERSAL_STRING => hash_hex(t.content),
        BMP_STRING => bmp_to_utf8(t.content).unwrap_or_else(|| hash_hex(t.content)),
        _ => t.content.to_vec(),
    };
    if s.contains(&0) {
        return None;
    }
    Some(s)
}

/// GnuTLS `_gnutls_x509_decode_string` for a fixed type; `None` means "print as hex".
fn decode_fixed(tag: u8, value: &[u8]) -> Option<Vec<u8>> {
    let (t, _) = read_tlv(value)?;
    if t.tag != Some(tag) || t.content.is_empty() {
        return None;
    }
    let s = if tag == BMP_STRING {
        bmp_to_utf8(t.content).unwrap_or_else(|| hash_hex(t.content))
    } else {
        t.content.to_vec()
    };
    if tag != OCTET_STRING && s.contains(&0) {
        return None;
    }
    Some(s)
}

/// GnuTLS `_gnutls_ucs2_to_utf8` (big-endian): drops one trailing U+0000 (if more than 2 bytes), ignores an odd
/// last byte; `None` on an unpaired surrogate.
fn bmp_to_utf8(content: &[u8]) -> Option<Vec<u8>> {
    let mut n = content.len();
    if n > 2 && content[n - 1] == 0 && content[n - 2] == 0 {
        n -= 2;
    }
    let units = content[..n].chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]]));
    let mut s = String::new();
    for ch in char::decode_utf16(units) {
        s.push(ch.ok()?);
    }
    Some(s.into_bytes())
}

/// `#` followed by lowercase hex (GnuTLS `data2hex`).
fn hash_hex(bytes: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(1 + 2 * bytes.len());
    out.push(b'#');
    for &b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0x0f)]);
    }
    out
}

/// GnuTLS `str_escape`; `None` (the DN fails) on a NUL byte.
fn escape(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() + 4);
    for (i, &b) in s.iter().enumerate() {
        if b == 0 {
            return None;
        }
        let special = matches!(b, b',' | b'+' | b'"' | b'\\' | b'<' | b'>' | b';');
        let leading = i == 0 && (b == b'#' || b == b' ');
        let trailing = i + 1 == s.len() && b == b' ';
        if special || leading || trailing {
            out.push(b'\\');
        }
        out.push(b);
    }
    Some(out)
}

/// Dotted text of an OBJECT IDENTIFIER's content, as libtasn1 4.19 `asn1_get_object_id_der` prints it.
fn oid_text(c: &[u8]) -> Option<String> {
    use std::fmt::Write;
    if c.first().is_none_or(|&b| b == 0x80) {
        return None;
    }
    let mut i = 0;
    let mut first: u64 = 0;
    while i < c.len() {
        let b = c[i];
        i += 1;
        if first > u64::MAX >> 7 {
            return None;
        }
        first = (first << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            break;
        }
    }
    let (x, y) = match first {
        0..=39 => (0, first),
        40..=79 => (1, first - 40),
        _ => (2, first - 80),
    };
    // libtasn1 prints every arc through an int64_t.
    let mut s = format!("{x}.{}", y.cast_signed());
    let mut val: u64 = 0;
    let mut leading = true;
    for &b in &c[i..] {
        if leading && b == 0x80 {
            return None;
        }
        leading = false;
        if val > u64::MAX >> 7 {
            return None;
        }
        val = (val << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            let _ = write!(s, ".{}", val.cast_signed());
            val = 0;
            leading = true;
        }
    }
    Some(s)
}

/// One DER element.
struct Tlv<'a> {
    /// The tag byte; `None` for a multi-byte (high tag number) tag.
    tag: Option<u8>,
    /// The contents.
    content: &'a [u8],
    /// The whole element: tag, length and contents.
    raw: &'a [u8],
}

/// Reads one element (definite length only) from the front of `input`; returns it and the rest.
fn read_tlv(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let first = *input.first()?;
    let mut i = 1;
    let tag = if first & 0x1f == 0x1f {
        // High tag number: base-128 continuation bytes.
        loop {
            let b = *input.get(i)?;
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
        None
    } else {
        Some(first)
    };
    let l = *input.get(i)?;
    i += 1;
    let len = if l < 0x80 {
        usize::from(l)
    } else if l == 0x80 {
        return None; // indefinite length: not DER
    } else {
        // Long form; like libtasn1, non-minimal encodings are accepted.
        let mut len: usize = 0;
        for _ in 0..(l & 0x7f) {
            let b = *input.get(i)?;
            i += 1;
            len = len.checked_mul(256)?.checked_add(usize::from(b))?;
            if len >= i32::MAX as usize {
                return None;
            }
        }
        len
    };
    let end = i.checked_add(len)?;
    let content = input.get(i..end)?;
    Some((
        Tlv {
            tag,
            content,
            raw: &input[..end],
        },
        &input[end..],
    ))
}

/// Reads one element with tag `tag` from the front of `*input` and advances past it.
fn expect<'a>(input: &mut &'a [u8], tag: u8) -> Option<Tlv<'a>> {
    let (t, rest) = read_tlv(input)?;
    if t.tag != Some(tag) {
        return None;
    }
    *input = rest;
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a measured certificate gave.
    enum Expect {
        /// This DN (valid UTF-8).
        Dn(&'static str),
        /// This DN, not valid UTF-8.
        Bytes(&'static [u8]),
        /// No DN: QEMU refused the connection, hung or aborted.
        Fail,
    }

    /// Standard base64 (with padding, no whitespace).
    fn b64(s: &str) -> Vec<u8> {
        fn val(c: u8) -> u32 {
            match c {
                b'A'..=b'Z' => u32::from(c - b'A'),
                b'a'..=b'z' => u32::from(c - b'a') + 26,
                b'0'..=b'9' => u32::from(c - b'0') + 52,
                b'+' => 62,
                b'/' => 63,
                _ => panic!("bad base64 character {c:#x}"),
            }
        }
        let s = s.as_bytes();
        assert_eq!(s.len() % 4, 0);
        let mut out = Vec::new();
        for q in s.chunks(4) {
            let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
            let mut n = 0u32;
            for &c in &q[..4 - pad] {
                n = (n << 6) | val(c);
            }
            n <<= 6 * pad;
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            out.extend_from_slice(&bytes[..3 - pad]);
        }
        out
    }

    // Small DER encoder for hand-built names.
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        let n = content.len();
        if n < 0x80 {
            v.push(n as u8);
        } else if n < 0x100 {
            v.extend_from_slice(&[0x81, n as u8]);
        } else {
            v.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
        }
        v.extend_from_slice(content);
        v
    }
    fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat()
    }
    fn oid(dotted: &str) -> Vec<u8> {
        let arcs: Vec<u64> = dotted.split('.').map(|a| a.parse().expect("arc")).collect();
        let mut body = Vec::new();
        let mut subids = vec![arcs[0] * 40 + arcs[1]];
        subids.extend_from_slice(&arcs[2..]);
        for mut v in subids {
            let mut enc = vec![(v & 0x7f) as u8];
            v >>= 7;
            while v != 0 {
                enc.push(0x80 | (v & 0x7f) as u8);
                v >>= 7;
            }
            enc.reverse();
            body.extend_from_slice(&enc);
        }
        tlv(0x06, &body)
    }
    fn atv(o: &str, value: &[u8]) -> Vec<u8> {
        tlv(0x30, &cat(&[oid(o), value.to_vec()]))
    }
    fn rdn(atvs: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x31, &atvs.concat())
    }
    fn utf8(s: &str) -> Vec<u8> {
        tlv(0x0c, s.as_bytes())
    }
    /// `name_dn` of an RDNSequence built from `rdns`.
    fn dn_of(rdns: &[Vec<u8>]) -> Option<Vec<u8>> {
        name_dn(&rdns.concat())
    }

    #[test]
    fn base64_decoder() {
        assert_eq!(b64("TWFu"), b"Man");
        assert_eq!(b64("TWE="), b"Ma");
        assert_eq!(b64("TQ=="), b"M");
        assert_eq!(b64(""), b"");
    }

    #[test]
    fn measured_vectors() {
        assert!(VECTORS.len() >= 40);
        for (name, b64der, expect) in VECTORS {
            let der = b64(b64der);
            let got = subject_dn_bytes(&der);
            match expect {
                Expect::Dn(s) => {
                    assert_eq!(got.as_deref(), Some(s.as_bytes()), "{name}");
                    assert_eq!(subject_dn(&der).as_deref(), Some(*s), "{name}");
                }
                Expect::Bytes(b) => {
                    assert_eq!(got.as_deref(), Some(*b), "{name}");
                    assert!(std::str::from_utf8(b).is_err(), "{name}");
                    assert_eq!(
                        subject_dn(&der),
                        Some(String::from_utf8_lossy(b).into_owned()),
                        "{name}"
                    );
                }
                Expect::Fail => {
                    assert_eq!(got, None, "{name}");
                    assert_eq!(subject_dn(&der), None, "{name}");
                }
            }
        }
    }

    #[test]
    fn socket_md_example() {
        let der = b64(VECTORS
            .iter()
            .find(|v| v.0 == "socket_md")
            .map(|v| v.1)
            .unwrap_or_default());
        assert_eq!(
            subject_dn(&der).as_deref(),
            Some("C=GB,L=London,O=Example Org,CN=client.example.com")
        );
    }

    #[test]
    fn lossy_utf8() {
        let der = b64(VECTORS
            .iter()
            .find(|v| v.0 == "h_utf8bad")
            .map(|v| v.1)
            .unwrap_or_default());
        assert_eq!(subject_dn_bytes(&der).as_deref(), Some(&b"CN=bad\xc3("[..]));
        assert_eq!(subject_dn(&der).as_deref(), Some("CN=bad\u{fffd}("));
    }

    #[test]
    fn not_a_certificate() {
        assert_eq!(subject_dn(b""), None);
        assert_eq!(subject_dn(b"hello"), None);
        assert_eq!(subject_dn(&[0x30, 0x00]), None);
        assert_eq!(subject_dn(&[0x30, 0x80, 0x00, 0x00]), None);
        let der = b64(VECTORS[0].1);
        assert!(subject_dn(&der).is_some());
        // Every truncation fails (measured: GnuTLS rejects trailing bytes too).
        for n in 0..der.len() {
            assert_eq!(subject_dn(&der[..n]), None, "prefix {n}");
        }
        let mut longer = der.clone();
        longer.push(0);
        assert_eq!(subject_dn(&longer), None);
        // A corrupted outer tag.
        let mut bad = der.clone();
        bad[0] = 0x31;
        assert_eq!(subject_dn(&bad), None);
        // Indefinite length on the outer SEQUENCE.
        let mut indef = vec![0x30, 0x80];
        indef.extend_from_slice(&der[4..]);
        indef.extend_from_slice(&[0, 0]);
        assert_eq!(subject_dn(&indef), None);
    }

    #[test]
    fn name_structure() {
        // Rows measured with gnutls_x509_crt_import + get_dn through ctypes (/work/notes/dn-measured.md).
        let cn_x = atv("2.5.4.3", &utf8("x"));
        assert_eq!(
            dn_of(&[rdn(std::slice::from_ref(&cn_x))]).as_deref(),
            Some(&b"CN=x"[..])
        );
        // Non-minimal length of the value: accepted.
        let nonmin = tlv(0x30, &cat(&[oid("2.5.4.3"), vec![0x0c, 0x81, 0x01, b'x']]));
        assert_eq!(dn_of(&[rdn(&[nonmin])]).as_deref(), Some(&b"CN=x"[..]));
        // An AttributeTypeAndValue with an extra element, or without a value: import error.
        let extra = tlv(0x30, &cat(&[oid("2.5.4.3"), utf8("x"), utf8("y")]));
        assert_eq!(dn_of(&[rdn(&[extra])]), None);
        assert_eq!(dn_of(&[rdn(&[tlv(0x30, &oid("2.5.4.3"))])]), None);
        // An RDN that is a SEQUENCE instead of a SET: import error.
        assert_eq!(dn_of(&[tlv(0x30, &cn_x)]), None);
        // Empty subject: GnuTLS "requested data not available".
        assert_eq!(dn_of(&[]), None);
        // Only empty RDNs: QEMU aborts; we fail.
        assert_eq!(dn_of(&[rdn(&[])]), None);
        assert_eq!(dn_of(&[rdn(&[]), rdn(&[])]), None);
        // Empty RDNs elsewhere are skipped, but a trailing one keeps its comma.
        assert_eq!(
            dn_of(&[rdn(&[]), rdn(std::slice::from_ref(&cn_x))]).as_deref(),
            Some(&b"CN=x"[..])
        );
        assert_eq!(
            dn_of(&[rdn(std::slice::from_ref(&cn_x)), rdn(&[])]).as_deref(),
            Some(&b"CN=x,"[..])
        );
        // Multi-valued RDNs keep their encoded order.
        let m = rdn(&[atv("2.5.4.11", &utf8("z")), atv("2.5.4.3", &utf8("a"))]);
        assert_eq!(dn_of(&[m, rdn(&[cn_x])]).as_deref(), Some(&b"OU=z+CN=a,CN=x"[..]));
    }

    #[test]
    fn oid_decoding() {
        let dn1 = |content: &[u8]| dn_of(&[rdn(&[tlv(0x30, &cat(&[tlv(0x06, content), utf8("x")]))])]);
        assert_eq!(dn1(&[0x55, 0x04, 0x03]).as_deref(), Some(&b"CN=x"[..]));
        // Empty OID; leading 0x80 in the first sub-identifier, or in a later one.
        assert_eq!(dn1(&[]), None);
        assert_eq!(dn1(&[0x80, 0x01]), None);
        assert_eq!(dn1(&[0x2a, 0x80, 0x01]), None);
        // An unterminated last sub-identifier is ignored, even when that turns it into CN.
        assert_eq!(dn1(&[0x2a, 0x86]).as_deref(), Some(&b"1.2=#0c0178"[..]));
        assert_eq!(dn1(&[0x55, 0x04, 0x03, 0x86]).as_deref(), Some(&b"CN=x"[..]));
        // 2^64 - 1 prints as -1; 2^64 overflows (measured: import error).
        let max = oid("1.2.18446744073709551615");
        assert_eq!(
            dn_of(&[rdn(&[tlv(0x30, &cat(&[max, utf8("x")]))])]).as_deref(),
            Some(&b"1.2.-1=#0c0178"[..])
        );
        let mut over = vec![0x2a, 0x82];
        over.extend_from_slice(&[0x80; 8]);
        over.push(0x00);
        assert_eq!(dn1(&over), None);
        assert_eq!(
            oid_text(&[0x2a, 0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
            None
        );
        assert_eq!(
            oid_text(&[0x2a, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]).as_deref(),
            Some("1.2.-9223372036854775808")
        );
        assert_eq!(
            oid_text(&[0x2a, 0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]).as_deref(),
            Some("1.2.-1")
        );
        // First sub-identifier split into X.Y.
        assert_eq!(oid_text(&[0x27]).as_deref(), Some("0.39"));
        assert_eq!(oid_text(&[0x28]).as_deref(), Some("1.0"));
        assert_eq!(oid_text(&[0x4f]).as_deref(), Some("1.39"));
        assert_eq!(oid_text(&[0x50]).as_deref(), Some("2.0"));
        assert_eq!(oid_text(&[0x88, 0x37, 0x01]).as_deref(), Some("2.999.1"));
        // The 126/127-character boundary (GnuTLS's OID buffer).
        let long126 = format!("1.2{}.99", ".9".repeat(60));
        let long127 = format!("1.2{}.999", ".9".repeat(60));
        assert_eq!((long126.len(), long127.len()), (126, 127));
        assert!(dn_of(&[rdn(&[atv(&long126, &utf8("x"))])]).is_some());
        assert_eq!(dn_of(&[rdn(&[atv(&long127, &utf8("x"))])]), None);
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape(b"a,b+c\"d\\e<f>g;h").as_deref(),
            Some(&b"a\\,b\\+c\\\"d\\\\e\\<f\\>g\\;h"[..])
        );
        assert_eq!(escape(b"#x#").as_deref(), Some(&b"\\#x#"[..]));
        assert_eq!(escape(b" x ").as_deref(), Some(&b"\\ x\\ "[..]));
        assert_eq!(escape(b" ").as_deref(), Some(&b"\\ "[..]));
        assert_eq!(escape(b"  ").as_deref(), Some(&b"\\ \\ "[..]));
        assert_eq!(escape(b"a=b\n\t\x01\xff").as_deref(), Some(&b"a=b\n\t\x01\xff"[..]));
        assert_eq!(escape(b"").as_deref(), Some(&b""[..]));
        assert_eq!(escape(b"a\x00"), None);
    }

    #[test]
    fn bmp() {
        assert_eq!(bmp_to_utf8(b"\x00A\x00B").as_deref(), Some(&b"AB"[..]));
        assert_eq!(bmp_to_utf8(b"\x00A\x00B\x00").as_deref(), Some(&b"AB"[..])); // odd byte ignored
        assert_eq!(bmp_to_utf8(b"\x00A\x00\x00").as_deref(), Some(&b"A"[..])); // trailing NUL dropped
        assert_eq!(bmp_to_utf8(b"\x00\x00").as_deref(), Some(&b"\x00"[..])); // only when longer than 2
        assert_eq!(bmp_to_utf8(b"\x41").as_deref(), Some(&b""[..]));
        assert_eq!(
            bmp_to_utf8(b"\xd8\x3d\xde\x00").as_deref(),
            Some("\u{1f600}".as_bytes())
        );
        assert_eq!(bmp_to_utf8(b"\xd8\x00\x00A"), None);
        assert_eq!(bmp_to_utf8(b"\xdc\x00"), None);
    }

    #[test]
    fn value_rules() {
        let cn = |v: Vec<u8>| dn_of(&[rdn(&[atv("2.5.4.3", &v)])]);
        assert_eq!(cn(tlv(0x13, b"p")).as_deref(), Some(&b"CN=p"[..]));
        assert_eq!(cn(tlv(0x16, b"ia5")).as_deref(), Some(&b"CN=#1603696135"[..]));
        assert_eq!(cn(tlv(0x14, b"caf\xe9")).as_deref(), Some(&b"CN=\\#636166e9"[..]));
        assert_eq!(cn(tlv(0x1c, b"\x00\x00\x00A")).as_deref(), Some(&b"CN=\\#00000041"[..]));
        assert_eq!(cn(tlv(0x0c, b"a\x00b")).as_deref(), Some(&b"CN=#0c03610062"[..]));
        assert_eq!(cn(tlv(0x0c, b"")), None);
        assert_eq!(cn(tlv(0x05, b"")), None);
        assert_eq!(cn(tlv(0x2c, &utf8("x"))).as_deref(), Some(&b"CN=#2c030c0178"[..]));
        let one = |o: &str, v: Vec<u8>| dn_of(&[rdn(&[atv(o, &v)])]);
        assert_eq!(one("2.5.4.6", tlv(0x13, b"")).as_deref(), Some(&b"C=#1300"[..]));
        assert_eq!(one("2.5.4.6", utf8("GB")).as_deref(), Some(&b"C=#0c024742"[..]));
        assert_eq!(
            one("1.2.840.113549.1.9.1", tlv(0x16, b"a@b")).as_deref(),
            Some(&b"EMAIL=a@b"[..])
        );
        assert_eq!(one("1.2.840.113549.1.9.21", tlv(0x04, b"a\x00")), None);
        assert_eq!(
            one("1.2.840.113549.1.9.21", tlv(0x04, b"#")).as_deref(),
            Some(&b"1.2.840.113549.1.9.21=\\#"[..])
        );
        assert_eq!(
            one("1.2.840.113549.1.9.7", tlv(0x16, b"pw")).as_deref(),
            Some(&b"1.2.840.113549.1.9.7=#16027077"[..])
        );
        assert_eq!(one("1.2.3.4", utf8("x,")).as_deref(), Some(&b"1.2.3.4=#0c02782c"[..]));
    }

    #[test]
    fn attribute_table() {
        assert_eq!(ATTRIBUTES.len(), 40);
        for (i, a) in ATTRIBUTES.iter().enumerate() {
            assert!(oid_text(&oid(a.0)[2..]).as_deref() == Some(a.0), "{}", a.0);
            assert!(ATTRIBUTES[..i].iter().all(|b| b.0 != a.0), "duplicate {}", a.0);
        }
    }

    /// (name, certificate DER in base64, DN QEMU 10.0.2 + GnuTLS 3.7.9 produced, or `None` where it failed).
    /// Measured: see /work/notes/dn-measured.md; generated by /work/notes/scripts/dn_gen_vectors.py.
    const VECTORS: &[(&str, &str, Expect)] = &[
        // socket_md: socket_mkcerts.sh client cert (RSA 2048).
        // QEMU: socket.md section 9 (socket_tls.py), authz-simple and authz-list
        (
            "socket_md",
            concat!(
                "MIIDkjCCAnqgAwIBAgIULWnMmNL4Oi1slJrxaxmCShbf3HowDQYJKoZIhvcNAQELBQAwPjELMAkGA1UEBhMCR0IxGTAXBgNVBAoM",
                "EENoYXJkZXZkIFRlc3QgQ0ExFDASBgNVBAMMC0NoYXJkZXZkIENBMB4XDTI2MTIwMTIxMzYzMVoXDTI2MTIzMTIxMzYzMVowUTEL",
                "MAkGA1UEBhMCR0IxDzANBgNVBAcMBkxvbmRvbjEUMBIGA1UECgwLRXhhbXBsZSBPcmcxGzAZBgNVBAMMEmNsaWVudC5leGFtcGxl",
                "LmNvbTCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAJuKrBjH2fvZDCA4xJSH1MZG9PRnxEcI4svD2/Gm+HmYnQ8q+rk9",
                "3wbReDFAU4rIpwPdm8Ng58eZm/vRLYowxdgW5uRW0zmye5b7nnOQzA3FWJ/phjr1JDvVjETB4KDVOhivM1/gLIjWc3uLWiA0vW1u",
                "QeeOPo5vsSdWD/b0Su1j4i3iVY1r1uwLdwMzi0RlZ1nSszKuzV2JEaID1ygW4eYJCt0ZeUwJqTNTgHOwNzxp9QypUMiWF+ZxXr3S",
                "nKb//6nUghKtWguDTMNxWs0ftgTV0QVOJjOtYZQshBygUym5Sjf8SVa1KwIZh+k7MgLMvMM9HRhMStk39fgmTwPBbicCAwEAAaN1",
                "MHMwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCBaAwEwYDVR0lBAwwCgYIKwYBBQUHAwIwHQYDVR0OBBYEFAdNZNEEm4feM8n7",
                "pkIWHawSkPmNMB8GA1UdIwQYMBaAFOzmcs3Uzdu0pUW07hWEXg/WKCe5MA0GCSqGSIb3DQEBCwUAA4IBAQCESx6yLL1uSJfMnYym",
                "I9lpPIj6LYoQJdCd/9+w23zCNIwEm0wufA1lf3bvd8FvKZ5nZS/cBKolAbCWbCvxeen0XzqGCSYa+cpJEC99WNgxNw/EUzMeqygH",
                "Adi4nnyHjIi21zm8DwdC+jKrg6ybEYNx8mHSl2xfMCKAt50BT1uimyrvrsc0kgQrCDYnyiaskyABmNiD2tcHFH1mEm9ybyJ6tmZk",
                "gyGflsdgYdeT190eqRf877R2MOMHQiEV8pOxS/8CFmSV0lMYRB3wUhd9ez0kfxsP+bLU9R46Ao+a5L+HG+nQXHdRHtMQF4bRuiDf",
                "JkDJn3cKa1R8KbtcxLE1zawC",
            ),
            Expect::Dn("C=GB,L=London,O=Example Org,CN=client.example.com"),
        ),
        // h_bmpmisc: BMP edge cases.
        // QEMU: denied, DN in the error
        (
            "h_bmpmisc",
            concat!(
                "MIIBxjCCAW2gAwIBAgICEBswCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowZzEKMAgGA1UEAx4BQTEMMAoGA1UEAx4DQQAA",
                "MQswCQYDVQQDHgIAADENMAsGA1UEAx4EAEHYADENMAsGA1UEAx4E/////jEPMA0GA1UEAx4GAEEAAAAAMQ8wDQYDVQQDHgYAIwB4",
                "ACAwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARqijwn+ey/Axa6KPl3JQTrG0MGm20vzaWAqRWgHkK4fWJ4KhaD/upTAZg8OmAn",
                "CMITSCzhD/at3X7382qoZ3LQozUwMzAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDAjAK",
                "BggqhkjOPQQDAgNHADBEAiBQlYPK+dMRfXTi86b17cUclvZgpAyOT4Bn8I1upaL01wIgQOWpwTHrQzY3Eq7JXwYuJyBoPAWcwwww",
                "czrCoK/6Avo=",
            ),
            Expect::Dn("CN=,CN=,CN=#1e020000,CN=\\#0041d800,CN=\u{ffff}\u{fffe},CN=#1e06004100000000,CN=\\#x\\ "),
        ),
        // h_bmpnul: BMP trailing / inner NUL.
        // QEMU: denied, DN in the error
        (
            "h_bmpnul",
            concat!(
                "MIIBfzCCASagAwIBAgICEAUwCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowIDENMAsGA1UEAx4EAEEAADEPMA0GA1UECh4G",
                "AEEAAABCMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEaoo8J/nsvwMWuij5dyUE6xtDBpttL82lgKkVoB5CuH1ieCoWg/7qUwGY",
                "PDpgJwjCE0gs4Q/2rd1+9/NqqGdy0KM1MDMwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUH",
                "AwIwCgYIKoZIzj0EAwIDRwAwRAIgZS0CWTzfOIV7fls9uNyYXEVfdnBIh8vm337vrShMEmsCICiwDdoWb/fadzdr1h5boCfyRpQ7",
                "FFqb6cRx42ERhdi6",
            ),
            Expect::Dn("CN=A,O=#1e06004100000042"),
        ),
        // h_bmpodd: BMP odd length.
        // QEMU: denied, DN in the error
        (
            "h_bmpodd",
            concat!(
                "MIIBbzCCARagAwIBAgICEAMwCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowEDEOMAwGA1UEAx4FAEEAQgAwWTATBgcqhkjO",
                "PQIBBggqhkjOPQMBBwNCAARqijwn+ey/Axa6KPl3JQTrG0MGm20vzaWAqRWgHkK4fWJ4KhaD/upTAZg8OmAnCMITSCzhD/at3X73",
                "82qoZ3LQozUwMzAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDAjAKBggqhkjOPQQDAgNH",
                "ADBEAiBfwlQT1dxKDge6Tp4QTCyumAJJ+cen7w6+S5zkfTa/ZgIgNRBYm0IS389NiRaSA8ZBGG/Ly+8ChKdOVaXBMzw0NlQ=",
            ),
            Expect::Dn("CN=AB"),
        ),
        // h_bmppair: BMP surrogate pair + comma.
        // QEMU: denied, DN in the error
        (
            "h_bmppair",
            concat!(
                "MIIBcjCCARmgAwIBAgICEAYwCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowEzERMA8GA1UEAx4I2D3eAAAsAHgwWTATBgcq",
                "hkjOPQIBBggqhkjOPQMBBwNCAARqijwn+ey/Axa6KPl3JQTrG0MGm20vzaWAqRWgHkK4fWJ4KhaD/upTAZg8OmAnCMITSCzhD/at",
                "3X7382qoZ3LQozUwMzAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDAjAKBggqhkjOPQQD",
                "AgNHADBEAiACOu25sYH4ZS8Wo1WJmqJ9bcZwlkPQZpPWYRlETZ7fcAIgd+iG6Dn7mTky5GMw7aphmLjK+VgDTq6R4axoth4SlTU=",
            ),
            Expect::Dn("CN=😀\\,x"),
        ),
        // h_bmpsur: BMP lone surrogate.
        // QEMU: denied, DN in the error
        (
            "h_bmpsur",
            concat!(
                "MIIBcDCCARWgAwIBAgICEAQwCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowDzENMAsGA1UEAx4E2AAAQTBZMBMGByqGSM49",
                "AgEGCCqGSM49AwEHA0IABGqKPCf57L8DFroo+XclBOsbQwabbS/NpYCpFaAeQrh9YngqFoP+6lMBmDw6YCcIwhNILOEP9q3dfvfz",
                "aqhnctCjNTAzMAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMCMAoGCCqGSM49BAMCA0kA",
                "MEYCIQCdCukWXNnT6MNwKlABINZBLMukegN6/buBG+a8Sc71VQIhAKYq8j3ZnbOND3RZSIbipBo81ekDVX4bl4zWOMsgCsAl",
            ),
            Expect::Dn("CN=\\#d8000041"),
        ),
        // h_cnnull: CN is NULL (zero length).
        // QEMU: Cannot get client distinguished name: ASN1 parser: Value is not valid
        (
            "h_cnnull",
            concat!(
                "MIIBdzCCAR2gAwIBAgICEBcwCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowFzEJMAcGA1UEAwUAMQowCAYDVQQKDAF4MFkw",
                "EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEaoo8J/nsvwMWuij5dyUE6xtDBpttL82lgKkVoB5CuH1ieCoWg/7qUwGYPDpgJwjCE0gs",
                "4Q/2rd1+9/NqqGdy0KM1MDMwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwIwCgYIKoZI",
                "zj0EAwIDSAAwRQIgAiY8doymzG6YBjxz/gCARuY7/ycEHjKgfFCM2Mk2cXUCIQDgapMMhCHYCUDFeRXYGwsIhDtFXLfL7sa03FTL",
                "s6Yfzw==",
            ),
            Expect::Fail,
        ),
        // h_cp: challengePassword.
        // QEMU: denied, DN in the error
        (
            "h_cp",
            concat!(
                "MIIBwDCCAWWgAwIBAgICEB0wCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowXzEPMA0GCSqGSIb3DQEJBxMAMREwDwYJKoZI",
                "hvcNAQkHDAJhADERMA8GCSqGSIb3DQEJBxYCcHcxETAPBgkqhkiG9w0BCQcUAnB3MRMwEQYJKoZIhvcNAQkHDARwdywxMFkwEwYH",
                "KoZIzj0CAQYIKoZIzj0DAQcDQgAEaoo8J/nsvwMWuij5dyUE6xtDBpttL82lgKkVoB5CuH1ieCoWg/7qUwGYPDpgJwjCE0gs4Q/2",
                "rd1+9/NqqGdy0KM1MDMwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwIwCgYIKoZIzj0E",
                "AwIDSQAwRgIhAJaf0+wVKla6qmWeRiyKtjE3m3XVWmP6N1vkgCdpvT1RAiEAnjvv5X21/OX887Weh3t4JdnSUMo7ihGOzw6RdM1+",
                "P/A=",
            ),
            Expect::Dn(concat!(
                "1.2.840.113549.1.9.7=#1300,1.2.840.113549.1.9.7=#0c026100,1.2.840.113549.1.9.7=#16027077,1.2.840",
                ".113549.1.9.7=#14027077,1.2.840.113549.1.9.7=pw\\,1",
            )),
        ),
        // h_empty: empty subject.
        // QEMU: Cannot get client distinguished name: The requested data were not available
        (
            "h_empty",
            concat!(
                "MIIBYDCCAQagAwIBAgICEBMwCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowADBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IA",
                "BGqKPCf57L8DFroo+XclBOsbQwabbS/NpYCpFaAeQrh9YngqFoP+6lMBmDw6YCcIwhNILOEP9q3dfvfzaqhnctCjNTAzMAwGA1Ud",
                "EwEB/wQCMAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMCMAoGCCqGSM49BAMCA0gAMEUCIQDl9vs+ranbF2ST",
                "69uuYyG5zUou+BfCChrBl5vdt0oskAIgLFQ8mYSxCc2yrSgRjsQ6Fzk5zZd6NbJdTeUzMw/PQq4=",
            ),
            Expect::Fail,
        ),
        // h_emptyc: empty PrintableString C.
        // QEMU: denied, DN in the error
        (
            "h_emptyc",
            concat!(
                "MIIBdjCCAR2gAwIBAgICEAswCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowFzEJMAcGA1UEBhMAMQowCAYDVQQDDAF4MFkw",
                "EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEaoo8J/nsvwMWuij5dyUE6xtDBpttL82lgKkVoB5CuH1ieCoWg/7qUwGYPDpgJwjCE0gs",
                "4Q/2rd1+9/NqqGdy0KM1MDMwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwIwCgYIKoZI",
                "zj0EAwIDRwAwRAIgITBw++SFvgVO8ZpgZ53jc+wHVf5XJ7PufiSy/6gi668CIGNhWs6PyJWmN3o5EiRmFU4m/w4u4CUtUMl4J/uq",
                "O9qY",
            ),
            Expect::Dn("C=#1300,CN=x"),
        ),
        // h_emptydir: empty UTF8String CN.
        // QEMU: Cannot get client distinguished name: ASN1 parser: Value is not valid
        (
            "h_emptydir",
            concat!(
                "MIIBazCCARGgAwIBAgICEAowCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowCzEJMAcGA1UEAwwAMFkwEwYHKoZIzj0CAQYI",
                "KoZIzj0DAQcDQgAEaoo8J/nsvwMWuij5dyUE6xtDBpttL82lgKkVoB5CuH1ieCoWg/7qUwGYPDpgJwjCE0gs4Q/2rd1+9/NqqGdy",
                "0KM1MDMwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwIwCgYIKoZIzj0EAwIDSAAwRQIh",
                "AIhAsydyGPSKU0wi99j1f0H7SIdM6AW3yVst74H+ytOQAiAl3QhuCJH74ahx2Vls/X/ZHdcfX3T8zjsi6ciQw3yDQg==",
            ),
            Expect::Fail,
        ),
        // h_emptyrdn: empty RDN SET.
        // QEMU: denied, DN in the error
        (
            "h_emptyrdn",
            concat!(
                "MIIBbzCCARSgAwIBAgICECEwCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowDjEAMQowCAYDVQQDDAF4MFkwEwYHKoZIzj0C",
                "AQYIKoZIzj0DAQcDQgAEaoo8J/nsvwMWuij5dyUE6xtDBpttL82lgKkVoB5CuH1ieCoWg/7qUwGYPDpgJwjCE0gs4Q/2rd1+9/Nq",
                "qGdy0KM1MDMwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwIwCgYIKoZIzj0EAwIDSQAw",
                "RgIhAPqwGpLQIYStNlyaTKhlciB1ikQ7JomPA6gdJYQ9waqUAiEAnKw76ieMbjXMsFKAE75N2MaqagApjk9zsCc88Cvkp98=",
            ),
            Expect::Dn("CN=x"),
        ),
        // h_escape: escaping edge cases.
        // QEMU: allowed by authz-simple with this identity
        (
            "h_escape",
            concat!(
                "MIIBvjCCAWOgAwIBAgICEBAwCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowXTEKMAgGA1UEAwwBIzEKMAgGA1UEAwwBIDEL",
                "MAkGA1UEAwwCICAxDDAKBgNVBAMMA2E9YjENMAsGA1UEAwwEeAp5CTENMAsGA1UEAwwEI2EgIzEKMAgGA1UEAwwBXDBZMBMGByqG",
                "SM49AgEGCCqGSM49AwEHA0IABGqKPCf57L8DFroo+XclBOsbQwabbS/NpYCpFaAeQrh9YngqFoP+6lMBmDw6YCcIwhNILOEP9q3d",
                "fvfzaqhnctCjNTAzMAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMCMAoGCCqGSM49BAMC",
                "A0kAMEYCIQCDlnYtqPyvXa3XJDgy9YdJuFWtHZC/8HDvHCNpgmAvJQIhAIkzgY+JmjF0lC8c9PWUg8Wuaxqc0o4H9akAsYI6egZN",
            ),
            Expect::Dn("CN=\\#,CN=\\ ,CN=\\ \\ ,CN=a=b,CN=x\ny\t,CN=\\#a #,CN=\\\\"),
        ),
        // h_fn: friendlyName / localKeyId.
        // QEMU: denied, DN in the error
        (
            "h_fn",
            concat!(
                "MIIB0DCCAXWgAwIBAgICEB4wCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowbzETMBEGCSqGSIb3DQEJFB4EAEEAADERMA8G",
                "CSqGSIb3DQEJFB4CAAAxDzANBgkqhkiG9w0BCRQeADERMA8GCSqGSIb3DQEJFB4C3AAxEDAOBgkqhkiG9w0BCRUEASMxDzANBgkq",
                "hkiG9w0BCRUEADBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABGqKPCf57L8DFroo+XclBOsbQwabbS/NpYCpFaAeQrh9YngqFoP+",
                "6lMBmDw6YCcIwhNILOEP9q3dfvfzaqhnctCjNTAzMAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsG",
                "AQUFBwMCMAoGCCqGSM49BAMCA0kAMEYCIQDbZuZHs+REqJr5n5xw5OTQKp9R3eNiuaHE+Hk97YhgmgIhALaeYvRftKda4j3XIMqE",
                "kuEq8s0/e4DY89E+PMEiDXdx",
            ),
            Expect::Dn(concat!(
                "1.2.840.113549.1.9.20=A,1.2.840.113549.1.9.20=#1e020000,1.2.840.113549.1.9.20=#1e00,1.2.840.1135",
                "49.1.9.20=\\#dc00,1.2.840.113549.1.9.21=\\#,1.2.840.113549.1.9.21=#0400",
            )),
        ),
        // h_long: long value (2-byte length).
        // QEMU: denied, DN in the error
        (
            "h_long",
            concat!(
                "MIICQjCCAemgAwIBAgICEBIwCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowgeIxgdMwgdAGA1UEAwyByExMTExMTExMTExM",
                "TExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExM",
                "TExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExM",
                "TExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMMQowCAYDVQQKDAFvMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcD",
                "QgAEaoo8J/nsvwMWuij5dyUE6xtDBpttL82lgKkVoB5CuH1ieCoWg/7qUwGYPDpgJwjCE0gs4Q/2rd1+9/NqqGdy0KM1MDMwDAYD",
                "VR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwIwCgYIKoZIzj0EAwIDRwAwRAIgFzytI0rWFaWK",
                "gRgl5kPVSNQSE+D3y15iJDdTXOatrxQCIGzTrdtQO8kUU/IBUIop7vGZasA20wa+oiingqk1hlp5",
            ),
            Expect::Dn(concat!(
                "CN=LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL",
                "LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL",
                "LLLLLLLLLLL,O=o",
            )),
        ),
        // h_misc: other named OIDs.
        // QEMU: denied, DN in the error
        (
            "h_misc",
            concat!(
                "MIICEDCCAbagAwIBAgICEA4wCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowga8xEzARBggrBgEFBQcJAgwFUGFyaXMxDzAN",
                "BggrBgEFBQcJAxMBRjEQMA4GCCsGAQUFBwkEEwJGUjEQMA4GCCsGAQUFBwkFEwJERTETMBEGCiqGSIb3FAEEhRAMA2FAYjERMA8G",
                "CCsGAQUFBwgFDANqQHgxDjAMBgUqhQNkARIDMTIzMQwwCgYFKoUDZAMSATQxDDAKBgUqhQNkBRIBNTEPMA0GCCqFAwOBAwEBEgE2",
                "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEaoo8J/nsvwMWuij5dyUE6xtDBpttL82lgKkVoB5CuH1ieCoWg/7qUwGYPDpgJwjC",
                "E0gs4Q/2rd1+9/NqqGdy0KM1MDMwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwIwCgYI",
                "KoZIzj0EAwIDSAAwRQIhAKX0TuXbx7pz+nWeeXY1eWHRzhy2C9c0r1iMdFJ1LrH+AiA5sz9TkUQfprhqMlnCIO5bEiwHrV+OkKG4",
                "SKJGqp4TPA==",
            ),
            Expect::Dn(concat!(
                "placeOfBirth=Paris,gender=F,countryOfCitizenship=FR,countryOfResidence=DE,userPrincipalName=a@b,",
                "XmppAddr=j@x,OGRN=123,SNILS=4,OGRNIP=5,INN=6",
            )),
        ),
        // h_misc2: more types.
        // QEMU: denied, DN in the error
        (
            "h_misc2",
            concat!(
                "MIICMzCCAdmgAwIBAgICEB8wCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowgdIxDjAMBgNVBAMcBQAAAEEAMQowCAYDVQQD",
                "DAEgMQ0wCwYDVQQDDATCoHggMQowCAYDVQQDAgEFMQwwCgYDVQQDLAMMAXgxDjAMBgUqhQNkARIDMTJhMQswCQYFKoUDZAMSADEN",
                "MAsGA1UEBh4EAEcAQjEVMBMGCgmSJomT8ixkARkWBSBhLGIgMQ8wDQYIKwYBBQUHCAUTAWoxEjAQBgkqhkiG9w0BCQEWA2EAYjEP",
                "MA0GCSqGSIb3DQEJARYAMRIwEAYKCZImiZPyLGQBAR4CAHUwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARqijwn+ey/Axa6KPl3",
                "JQTrG0MGm20vzaWAqRWgHkK4fWJ4KhaD/upTAZg8OmAnCMITSCzhD/at3X7382qoZ3LQozUwMzAMBgNVHRMBAf8EAjAAMA4GA1Ud",
                "DwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDAjAKBggqhkjOPQQDAgNIADBFAiAuGRjsl0Q2FBPIndTRGJAyBo0DhXL/kB+i",
                "yqHLPkzZTgIhALqBm0KFz78lRACI6kynORKRVk6lJHh58d5y+EEbGUV+",
            ),
            Expect::Dn(concat!(
                "CN=\\#0000004100,CN=\\ ,CN=\u{a0}x\\ ,CN=#020105,CN=#2c030c0178,OGRN=12a,SNILS=#1200,C=#1e040047",
                "0042,DC=\\ a\\,b\\ ,XmppAddr=#13016a,EMAIL=#1603610062,EMAIL=#1600,UID=u",
            )),
        ),
        // h_multi3: 3-valued RDN, not DER-sorted.
        // QEMU: denied, DN in the error
        (
            "h_multi3",
            concat!(
                "MIIBiDCCAS2gAwIBAgICEBEwCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowJzElMAgGA1UECwwBejAIBgNVBAMMAWEwDwYK",
                "CZImiZPyLGQBAQwBbTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABGqKPCf57L8DFroo+XclBOsbQwabbS/NpYCpFaAeQrh9Yngq",
                "FoP+6lMBmDw6YCcIwhNILOEP9q3dfvfzaqhnctCjNTAzMAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoG",
                "CCsGAQUFBwMCMAoGCCqGSM49BAMCA0kAMEYCIQCDm7ekJGXqqQW4Kax3y//4r6k4Lz0h8MfIqE/mqwMe/QIhAM1SmX9/ajNzjC5c",
                "KaM36Lu9Hio+lCm+SWvxMtDUQe1N",
            ),
            Expect::Dn("OU=z+CN=a+UID=m"),
        ),
        // h_nd: entries without names.
        // QEMU: denied, DN in the error
        (
            "h_nd",
            concat!(
                "MIIBrzCCAVWgAwIBAgICEA8wCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowTzERMA8GCSqGSIb3DQEJBxMCcHcxEzARBgkq",
                "hkiG9w0BCRQeBABmAG4xEjAQBgkqhkiG9w0BCRUEA2FiLDERMA8GCSqGSIb3DQEJBAQCAQIwWTATBgcqhkjOPQIBBggqhkjOPQMB",
                "BwNCAARqijwn+ey/Axa6KPl3JQTrG0MGm20vzaWAqRWgHkK4fWJ4KhaD/upTAZg8OmAnCMITSCzhD/at3X7382qoZ3LQozUwMzAM",
                "BgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDAjAKBggqhkjOPQQDAgNIADBFAiEA2DltAh6n",
                "nTGpD8dZE0gpigwcaXl7Ias9At0dax11KJcCIAD6dfC4n4/1CeTMWTRqHx/uud9fgIQ+KB/bDIzdIp3a",
            ),
            Expect::Dn(concat!(
                "1.2.840.113549.1.9.7=pw,1.2.840.113549.1.9.20=fn,1.2.840.113549.1.9.21=ab\\,,1.2.840.113549.1.9.",
                "4=\x01\x02",
            )),
        ),
        // h_octnul: NUL in OCTET STRING value.
        // QEMU: Cannot get client distinguished name: ASN1 parser: Error in DER parsing
        (
            "h_octnul",
            concat!(
                "MIIBgDCCASagAwIBAgICEBYwCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowIDESMBAGCSqGSIb3DQEJFQQDYQBiMQowCAYD",
                "VQQDDAF4MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEaoo8J/nsvwMWuij5dyUE6xtDBpttL82lgKkVoB5CuH1ieCoWg/7qUwGY",
                "PDpgJwjCE0gs4Q/2rd1+9/NqqGdy0KM1MDMwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUH",
                "AwIwCgYIKoZIzj0EAwIDSAAwRQIgCtdnKeIbAd87kYRwzBtUuu1LdGocsQLH8fpyBTcLwogCIQD0PvO8Gubh7tN3NGcWzzVoShXB",
                "YQCLTfs/mIZh7hbq5g==",
            ),
            Expect::Fail,
        ),
        // h_oid126: 126-char OID.
        // QEMU: denied, DN in the error
        (
            "h_oid126",
            concat!(
                "MIIBpzCCAU2gAwIBAgICEBkwCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowRzFFMEMGPioJCQkJCQkJCQkJCQkJCQkJCQkJ",
                "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQljDAF4MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEaoo8",
                "J/nsvwMWuij5dyUE6xtDBpttL82lgKkVoB5CuH1ieCoWg/7qUwGYPDpgJwjCE0gs4Q/2rd1+9/NqqGdy0KM1MDMwDAYDVR0TAQH/",
                "BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwIwCgYIKoZIzj0EAwIDSAAwRQIhAMnpEjzedwi3Wj3XwMXs",
                "6i2E9Gzs/bRfOpx81e5jjcohAiB65U9NfJ7o/RVzEtdOABYI4Gmr/a83pYW711dW2+TynQ==",
            ),
            Expect::Dn(concat!(
                "1.2.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.",
                "9.9.9.9.9.9.9.9.9.9.9.9.9.9.99=#0c0178",
            )),
        ),
        // h_oid127: 127-char OID.
        // QEMU: hangs (get_dn SHORT_MEMORY_BUFFER loop)
        (
            "h_oid127",
            concat!(
                "MIIBqDCCAU6gAwIBAgICEBowCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowSDFGMEQGPyoJCQkJCQkJCQkJCQkJCQkJCQkJ",
                "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQmHZwwBeDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABGqK",
                "PCf57L8DFroo+XclBOsbQwabbS/NpYCpFaAeQrh9YngqFoP+6lMBmDw6YCcIwhNILOEP9q3dfvfzaqhnctCjNTAzMAwGA1UdEwEB",
                "/wQCMAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMCMAoGCCqGSM49BAMCA0gAMEUCIQCDA6x/aSKTGHl6zz99",
                "WWKpb/JfNi7v+n5gzTRyqkGghwIgd83Gt18z5oxWftyeh5TtQjHh71gq1DG7wgSPCPkYK0g=",
            ),
            Expect::Fail,
        ),
        // h_oids: OID decoding edge cases.
        // QEMU: allowed by authz-simple with this identity
        (
            "h_oids",
            concat!(
                "MIIBtjCCAVygAwIBAgICEBgwCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowVjEJMAcGAiqGDAF4MRIwEAYLKoGAgICAgICA",
                "gAAMAXgxETAPBgqB//////////9/DAF4MQkwBwYCJwMMAXgxCDAGBgFPDAF5MQ0wCwYGKpCAgIAADAF6MFkwEwYHKoZIzj0CAQYI",
                "KoZIzj0DAQcDQgAEaoo8J/nsvwMWuij5dyUE6xtDBpttL82lgKkVoB5CuH1ieCoWg/7qUwGYPDpgJwjCE0gs4Q/2rd1+9/NqqGdy",
                "0KM1MDMwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwIwCgYIKoZIzj0EAwIDSAAwRQIh",
                "ANn+01wUHN2Rak6U2e2NWzRa3d33/7mfVXC2xjIom4pXAiB6+kQP1TDnaI/+l3029rA1h9OQCmrXlLudw3Zrd9LKdA==",
            ),
            Expect::Dn(concat!(
                "1.2=#0c0178,1.2.-9223372036854775808=#0c0178,2.-81=#0c0178,0.39.3=#0c0178,1.39=#0c0179,1.2.42949",
                "67296=#0c017a",
            )),
        ),
        // h_printbad: chars not allowed in PrintableString / IA5.
        // QEMU: denied, DN in the error
        (
            "h_printbad",
            concat!(
                "MIIBijCCAS+gAwIBAgICEAkwCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowKTEQMA4GA1UEAxMHYUBiKmNfZDEVMBMGCSqG",
                "SIb3DQEJARYGY2Fm6UB4MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEaoo8J/nsvwMWuij5dyUE6xtDBpttL82lgKkVoB5CuH1i",
                "eCoWg/7qUwGYPDpgJwjCE0gs4Q/2rd1+9/NqqGdy0KM1MDMwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAww",
                "CgYIKwYBBQUHAwIwCgYIKoZIzj0EAwIDSQAwRgIhANLaxMYk3fd74nwUG5gIspZMFeqyIQXKjUxPujpxBcaiAiEA3bv4BRZk7oG0",
                "aPmfvYWIP+xdHNjcTcGOMKXAjFri9h4=",
            ),
            Expect::Bytes(b"CN=a@b*c_d,EMAIL=caf\xe9@x"),
        ),
        // h_rdnend: empty RDN last.
        // QEMU: allowed by authz-simple with this identity
        (
            "h_rdnend",
            concat!(
                "MIIBbTCCARSgAwIBAgICEBQwCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowDjEKMAgGA1UEAwwBeDEAMFkwEwYHKoZIzj0C",
                "AQYIKoZIzj0DAQcDQgAEaoo8J/nsvwMWuij5dyUE6xtDBpttL82lgKkVoB5CuH1ieCoWg/7qUwGYPDpgJwjCE0gs4Q/2rd1+9/Nq",
                "qGdy0KM1MDMwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwIwCgYIKoZIzj0EAwIDRwAw",
                "RAIgee+JReL09i/NtkCcPuZsY4qOCABQC0rF9YRPmx63kQ8CICP0odyX5Xn+PBjHp+DdO+xkFmBw7Jot8Lr8UM84llIi",
            ),
            Expect::Dn("CN=x,"),
        ),
        // h_rdnmid: empty RDN in the middle.
        // QEMU: denied, DN in the error
        (
            "h_rdnmid",
            concat!(
                "MIIBejCCASCgAwIBAgICEBUwCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowGjEKMAgGA1UEAwwBYTEAMQowCAYDVQQDDAFi",
                "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEaoo8J/nsvwMWuij5dyUE6xtDBpttL82lgKkVoB5CuH1ieCoWg/7qUwGYPDpgJwjC",
                "E0gs4Q/2rd1+9/NqqGdy0KM1MDMwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwIwCgYI",
                "KoZIzj0EAwIDSAAwRQIgSV+GcP8G0EBAOUsKJ3siGEwfzhmopJQd0P9u7GqK6k0CIQCRjegF4EY4IPckgRmg2wTN4vNVIPZPA4YE",
                "Qo3eaeDGxQ==",
            ),
            Expect::Dn("CN=a,CN=b"),
        ),
        // h_t61: teletex non-ASCII and escaped ASCII.
        // QEMU: denied, DN in the error
        (
            "h_t61",
            concat!(
                "MIIBfTCCASOgAwIBAgICEAIwCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowHTENMAsGA1UEAxQEY2Fm6TEMMAoGA1UEChQD",
                "YSxiMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEaoo8J/nsvwMWuij5dyUE6xtDBpttL82lgKkVoB5CuH1ieCoWg/7qUwGYPDpg",
                "JwjCE0gs4Q/2rd1+9/NqqGdy0KM1MDMwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwIw",
                "CgYIKoZIzj0EAwIDSAAwRQIhALzdXjvbSvbPYO4GFC8XCjhcVkMMGaSMGTgP4yr4PL7/AiBu89lCxZv8aX0IxV+j8VHQxFtibFxX",
                "6fkVdo+AGX8wUA==",
            ),
            Expect::Dn("CN=\\#636166e9,O=a\\,b"),
        ),
        // h_t61misc: teletex edge cases.
        // QEMU: denied, DN in the error
        (
            "h_t61misc",
            concat!(
                "MIIBojCCAUmgAwIBAgICEBwwCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowQzEMMAoGA1UEAxQDYQliMQswCQYDVQQDFAJh",
                "fzELMAkGA1UEAxQCI3gxCzAJBgNVBAMUAmEAMQwwCgYDVQQDFAN+ICEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARqijwn+ey/",
                "Axa6KPl3JQTrG0MGm20vzaWAqRWgHkK4fWJ4KhaD/upTAZg8OmAnCMITSCzhD/at3X7382qoZ3LQozUwMzAMBgNVHRMBAf8EAjAA",
                "MA4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDAjAKBggqhkjOPQQDAgNHADBEAiBiQN2pYalRerLUzyzk3UcsWjr4",
                "O6xsWxwGheHFyCTbZwIgXMC6EWjZ/ekJA9MzA2yXW2Arh2JOnE0Zgv7IQ6E9sXo=",
            ),
            Expect::Dn("CN=\\#610962,CN=\\#617f,CN=\\#x,CN=\\#6100,CN=~ !"),
        ),
        // h_types: string types in CN.
        // QEMU: denied, DN in the error
        (
            "h_types",
            concat!(
                "MIIB0zCCAXmgAwIBAgICEAEwCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowczESMBAGA1UEAxMJcHJpbnRhYmxlMRYwFAYD",
                "VQQDFA10ZWxldGV4IGFzY2lpMQ8wDQYDVQQDFgZpYTUgY24xHTAbBgNVBAMeFABiAG0AcAAgAFoAbwDrACBl5WcsMRUwEwYDVQQD",
                "HAwAAAB1AAAAbgAAAGkwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARqijwn+ey/Axa6KPl3JQTrG0MGm20vzaWAqRWgHkK4fWJ4",
                "KhaD/upTAZg8OmAnCMITSCzhD/at3X7382qoZ3LQozUwMzAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAK",
                "BggrBgEFBQcDAjAKBggqhkjOPQQDAgNIADBFAiEA/bScZn+e0CUgz2gQsnYi4u7nlV4A/0KO9jf7BcLDCAUCICFgVAlA/Bb84BGK",
                "zmlPQsqLA5qJ/rb8gGeBOU2JmxoU",
            ),
            Expect::Dn(
                "CN=printable,CN=teletex ascii,CN=#160669613520636e,CN=bmp Zoë 日本,CN=\\#000000750000006e00000069",
            ),
        ),
        // h_unknown: unknown OIDs.
        // QEMU: denied, DN in the error
        (
            "h_unknown",
            concat!(
                "MIIBkTCCATegAwIBAgICEA0wCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowMTEPMA0GAyoDBAwGY3VzdG9tMQwwCgYDiDcB",
                "MAMMAXgxEDAOBgkrBgEEAYI3FQcCAQEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARqijwn+ey/Axa6KPl3JQTrG0MGm20vzaWA",
                "qRWgHkK4fWJ4KhaD/upTAZg8OmAnCMITSCzhD/at3X7382qoZ3LQozUwMzAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIHgDAT",
                "BgNVHSUEDDAKBggrBgEFBQcDAjAKBggqhkjOPQQDAgNIADBFAiEAsYEhvCuVtrU7PrtAlzZCaM/+ZFif+Wp7UZd6pe0ryf8CIEwE",
                "tcKO8O5SyLoQblJysoQwbpOsq/rLjQB6s4oy2wG/",
            ),
            Expect::Dn("1.2.3.4=#0c06637573746f6d,2.999.1=#30030c0178,1.3.6.1.4.1.311.21.7=#020101"),
        ),
        // h_utf8bad: invalid UTF-8 in UTF8String.
        // QEMU: denied, DN in the error
        (
            "h_utf8bad",
            concat!(
                "MIIBcDCCARagAwIBAgICEAcwCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowEDEOMAwGA1UEAwwFYmFkwygwWTATBgcqhkjO",
                "PQIBBggqhkjOPQMBBwNCAARqijwn+ey/Axa6KPl3JQTrG0MGm20vzaWAqRWgHkK4fWJ4KhaD/upTAZg8OmAnCMITSCzhD/at3X73",
                "82qoZ3LQozUwMzAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDAjAKBggqhkjOPQQDAgNI",
                "ADBFAiEA8bfNeT6k6RKcB6gNdRNAhn34OU8LeVyyR06SpCAO8xUCIGMO/oq/CwvGi7wZq7ScAK+1jcZK7PABnpUdSj1Iz3Bn",
            ),
            Expect::Bytes(b"CN=bad\xc3("),
        ),
        // h_utf8nul: NUL in UTF8String.
        // QEMU: denied, DN in the error
        (
            "h_utf8nul",
            concat!(
                "MIIBejCCASGgAwIBAgICEAgwCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowGzEMMAoGA1UEAwwDYQBiMQswCQYDVQQKDAJv",
                "azBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABGqKPCf57L8DFroo+XclBOsbQwabbS/NpYCpFaAeQrh9YngqFoP+6lMBmDw6YCcI",
                "whNILOEP9q3dfvfzaqhnctCjNTAzMAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMCMAoG",
                "CCqGSM49BAMCA0cAMEQCIC9w9XpTReLLOU2pslm2Xs7OWtJdGpmT2KZYHShhJRgpAiA/jhKaf2TEK/m/qFlBkl1EAJbb3mkjju+I",
                "RgoAcWIk9A==",
            ),
            Expect::Dn("CN=#0c03610062,O=ok"),
        ),
        // h_v1: X.509 v1 (no version field, no extensions).
        // QEMU: denied, DN in the error
        (
            "h_v1",
            concat!(
                "MIIBQjCB6QICECAwCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0ExDjAMBgNV",
                "BAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowHzELMAkGA1UEBhMCR0IxEDAOBgNVBAMMB3YxIGNlcnQw",
                "WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARqijwn+ey/Axa6KPl3JQTrG0MGm20vzaWAqRWgHkK4fWJ4KhaD/upTAZg8OmAnCMIT",
                "SCzhD/at3X7382qoZ3LQMAoGCCqGSM49BAMCA0gAMEUCIQD5p1U/yQ9paCDnD43uq9QE6faUeaNRYDBJrUwn/sNFRQIgfV5183ZD",
                "tfG+p/kgWZW2d6BKReIaandAlnSQePOwWg8=",
            ),
            Expect::Dn("C=GB,CN=v1 cert"),
        ),
        // h_wrongtype: wrong string types.
        // QEMU: denied, DN in the error
        (
            "h_wrongtype",
            concat!(
                "MIIBuTCCAV+gAwIBAgICEAwwCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowWTELMAkGA1UEBgwCR0IxEjAQBgkqhkiG9w0B",
                "CQEMA2FAYjETMBEGCgmSJomT8ixkARkMA29yZzETMBEGCgmSJomT8ixkAQEWA3VpZDEMMAoGA1UEBQwDMTIzMFkwEwYHKoZIzj0C",
                "AQYIKoZIzj0DAQcDQgAEaoo8J/nsvwMWuij5dyUE6xtDBpttL82lgKkVoB5CuH1ieCoWg/7qUwGYPDpgJwjCE0gs4Q/2rd1+9/Nq",
                "qGdy0KM1MDMwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwIwCgYIKoZIzj0EAwIDSAAw",
                "RQIhAOCWFgngYW/Rb0Ofy0DiQTVGnwDX+l21sH3agJrcn1zTAiBqQpuRBCRnd8ysLxl7J9mP2j5Z1IlcPiRPuYiuXOQfig==",
            ),
            Expect::Dn("C=#0c024742,EMAIL=#0c03614062,DC=#0c036f7267,UID=#1603756964,serialNumber=#0c03313233"),
        ),
        // o1: openssl: ST, comma in O, two OUs, emailAddress.
        // QEMU: allowed by authz-simple with this identity
        (
            "o1",
            concat!(
                "MIICXDCCAgKgAwIBAgIUQafq4F/PTaWhAagGgtP6/gU96skwCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0No",
                "YXJkZXZkIEROIFRlc3QgQ0ExDjAMBgNVBAMMBUROIENBMB4XDTI2MTIwMTIyMTg0MVoXDTM2MTEyODIyMTg0MVowgakxCzAJBgNV",
                "BAYTAkdCMRcwFQYDVQQIDA5HcmVhdGVyIExvbmRvbjEPMA0GA1UEBwwGTG9uZG9uMRYwFAYDVQQKDA1FeGFtcGxlLCBJbmMuMQww",
                "CgYDVQQLDANEZXYxCzAJBgNVBAsMAlFBMRswGQYDVQQDDBJjbGllbnQuZXhhbXBsZS5jb20xIDAeBgkqhkiG9w0BCQEWEWFsaWNl",
                "QGV4YW1wbGUuY29tMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEaoo8J/nsvwMWuij5dyUE6xtDBpttL82lgKkVoB5CuH1ieCoW",
                "g/7qUwGYPDpgJwjCE0gs4Q/2rd1+9/NqqGdy0KN1MHMwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYI",
                "KwYBBQUHAwIwHQYDVR0OBBYEFPZ4dNV/buVfmsmxlTR+pxm4rTbVMB8GA1UdIwQYMBaAFCDx2vicjji1OMKuekAj7pvVHAvvMAoG",
                "CCqGSM49BAMCA0gAMEUCIQCyR8JDKEZ7sQDidlKUYHJlN6P/hxsPyezf38qI1FwXdgIgYido7yuAg3cCEdFeyT/9Vkm/rQwGIuBZ",
                "FnTGJPhwFvw=",
            ),
            Expect::Dn(concat!(
                "C=GB,ST=Greater London,L=London,O=Example\\, Inc.,OU=Dev,OU=QA,CN=client.example.com,EMAIL=alice",
                "@example.com",
            )),
        ),
        // o2: openssl -multivalue-rdn: DC, CN+UID.
        // QEMU: denied, DN in the error
        (
            "o2",
            concat!(
                "MIICGzCCAcKgAwIBAgIUQafq4F/PTaWhAagGgtP6/gU96sowCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0No",
                "YXJkZXZkIEROIFRlc3QgQ0ExDjAMBgNVBAMMBUROIENBMB4XDTI2MTIwMTIyMTg0MVoXDTM2MTEyODIyMTg0MVowajETMBEGCgmS",
                "JomT8ixkARkWA29yZzEXMBUGCgmSJomT8ixkARkWB2V4YW1wbGUxKTASBgNVBAMMC0FsaWNlIFNtaXRoMBMGCgmSJomT8ixkAQEM",
                "BWFsaWNlMQ8wDQYDVQQLDAZQZW9wbGUwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARqijwn+ey/Axa6KPl3JQTrG0MGm20vzaWA",
                "qRWgHkK4fWJ4KhaD/upTAZg8OmAnCMITSCzhD/at3X7382qoZ3LQo3UwczAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIHgDAT",
                "BgNVHSUEDDAKBggrBgEFBQcDAjAdBgNVHQ4EFgQU9nh01X9u5V+aybGVNH6nGbitNtUwHwYDVR0jBBgwFoAUIPHa+JyOOLU4wq56",
                "QCPum9UcC+8wCgYIKoZIzj0EAwIDRwAwRAIgFJTaAgb4DW/44xxHT6fB8Z2Phl577253TJOpu7O6efwCIHM75kjml/FKnt9FaEya",
                "D02pTEnwrHIsxO3UXfzeZhPI",
            ),
            Expect::Dn("DC=org,DC=example,CN=Alice Smith+UID=alice,OU=People"),
        ),
        // o3: openssl: RFC 4514 specials, leading #, leading/trailing spaces.
        // QEMU: allowed by authz-simple with this identity
        (
            "o3",
            concat!(
                "MIICCDCCAa+gAwIBAgIUQafq4F/PTaWhAagGgtP6/gU96s4wCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0No",
                "YXJkZXZkIEROIFRlc3QgQ0ExDjAMBgNVBAMMBUROIENBMB4XDTI2MTIwMTIyMTg0N1oXDTM2MTEyODIyMTg0N1owVzEaMBgGA1UE",
                "AwwRYStiLGM7ZDxlPmYiZ1xoPWkxDjAMBgNVBAoMBSNsZWFkMRkwFwYDVQQLDBAgbGVhZCBhbmQgdHJhaWwgMQ4wDAYDVQQHDAV4",
                "I3kgejBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABGqKPCf57L8DFroo+XclBOsbQwabbS/NpYCpFaAeQrh9YngqFoP+6lMBmDw6",
                "YCcIwhNILOEP9q3dfvfzaqhnctCjdTBzMAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMC",
                "MB0GA1UdDgQWBBT2eHTVf27lX5rJsZU0fqcZuK021TAfBgNVHSMEGDAWgBQg8dr4nI44tTjCrnpAI+6b1RwL7zAKBggqhkjOPQQD",
                "AgNHADBEAiA/dr719lbF2biF8+RdMMewZSlyxoOD4FjII4jmkLMCWgIgRruX5fGqEOpfetSmOVTRKuc/K3tui4Gv/L4VHWsyKwM=",
            ),
            Expect::Dn("CN=a\\+b\\,c\\;d\\<e\\>f\\\"g\\\\h=i,O=\\#lead,OU=\\ lead and trail\\ ,L=x#y z"),
        ),
        // o4: openssl -utf8: UTF8String non-ASCII.
        // QEMU: allowed by authz-simple with this identity
        (
            "o4",
            concat!(
                "MIIB7DCCAZKgAwIBAgIUQafq4F/PTaWhAagGgtP6/gU96swwCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0No",
                "YXJkZXZkIEROIFRlc3QgQ0ExDjAMBgNVBAMMBUROIENBMB4XDTI2MTIwMTIyMTg0MVoXDTM2MTEyODIyMTg0MVowOjELMAkGA1UE",
                "BhMCREUxFTATBgNVBAoMDE3DvGxsZXIgR21iSDEUMBIGA1UEAwwLWm/DqyDml6XmnKwwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC",
                "AARqijwn+ey/Axa6KPl3JQTrG0MGm20vzaWAqRWgHkK4fWJ4KhaD/upTAZg8OmAnCMITSCzhD/at3X7382qoZ3LQo3UwczAMBgNV",
                "HRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDAjAdBgNVHQ4EFgQU9nh01X9u5V+aybGVNH6nGbit",
                "NtUwHwYDVR0jBBgwFoAUIPHa+JyOOLU4wq56QCPum9UcC+8wCgYIKoZIzj0EAwIDSAAwRQIhAOrYnkdHg4J1zqApOMzsNcIBvSgZ",
                "By4KeXtMJY7Vu6BGAiApv3DQshj5qg7Axyzmd23u4bMNlyIaHQPNHQgRwvSeEg==",
            ),
            Expect::Dn("C=DE,O=Müller GmbH,CN=Zoë 日本"),
        ),
        // o5: openssl: many attribute types, telephoneNumber as UTF8String, unstructuredName.
        // QEMU: denied, DN in the error
        (
            "o5",
            concat!(
                "MIIDCTCCArCgAwIBAgIUQafq4F/PTaWhAagGgtP6/gU96s8wCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0No",
                "YXJkZXZkIEROIFRlc3QgQ0ExDjAMBgNVBAMMBUROIENBMB4XDTI2MTIwMTIyMTg0N1oXDTM2MTEyODIyMTg0N1owggFWMQ4wDAYD",
                "VQQFEwUxMjM0NTELMAkGA1UEDAwCRHIxEjAQBgNVBAkMCTEgTWFpbiBTdDERMA8GA1UEEQwIU1cxQSAxQUExDjAMBgNVBCoMBUFs",
                "aWNlMQ4wDAYDVQQEDAVTbWl0aDELMAkGA1UEKwwCQVMxDTALBgNVBA0MBGRlc2MxHTAbBgNVBA8MFFByaXZhdGUgT3JnYW5pemF0",
                "aW9uMQswCQYDVQQuEwJxMTEMMAoGA1UEQQwDYWxpMRAwDgYDVQQpDAdBbGljZSBTMQwwCgYDVQQsDANJSUkxGTAXBgNVBBQMECs0",
                "NCAyMCA3OTQ2IDAwMDAxEzARBgsrBgEEAYI3PAIBAxMCR0IxGjAYBgsrBgEEAYI3PAIBAgwJSGFtcHNoaXJlMRswGQYLKwYBBAGC",
                "NzwCAQEMCldpbmNoZXN0ZXIxETAPBgkqhkiG9w0BCQIMAnVuMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEaoo8J/nsvwMWuij5",
                "dyUE6xtDBpttL82lgKkVoB5CuH1ieCoWg/7qUwGYPDpgJwjCE0gs4Q/2rd1+9/NqqGdy0KN1MHMwDAYDVR0TAQH/BAIwADAOBgNV",
                "HQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwIwHQYDVR0OBBYEFPZ4dNV/buVfmsmxlTR+pxm4rTbVMB8GA1UdIwQYMBaA",
                "FCDx2vicjji1OMKuekAj7pvVHAvvMAoGCCqGSM49BAMCA0cAMEQCIE/fnzrgVgmZRo+604HqKwlzANZpsyoFieRuwhdWJLNGAiBk",
                "X7hEoqIfq1Y3cxUVlqtLYCmFl0TQQ6daz/1NYj1z8A==",
            ),
            Expect::Dn(concat!(
                "serialNumber=12345,title=Dr,street=1 Main St,postalCode=SW1A 1AA,givenName=Alice,surName=Smith,i",
                "nitials=AS,description=desc,businessCategory=Private Organization,dnQualifier=q1,pseudonym=ali,n",
                "ame=Alice S,generationQualifier=III,telephoneNumber=#0c102b343420323020373934362030303030,jurisd",
                "ictionOfIncorporationCountryName=GB,jurisdictionOfIncorporationStateOrProvinceName=Hampshire,jur",
                "isdictionOfIncorporationLocalityName=Winchester,1.2.840.113549.1.9.2=#0c02756e",
            )),
        ),
        // z_allempty: only an empty RDN: GnuTLS 3.7.9 asserts (QEMU aborts).
        // QEMU: aborts (GnuTLS assertion)
        (
            "z_allempty",
            concat!(
                "MIIBYjCCAQigAwIBAgICECIwCgYIKoZIzj0EAwIwOzELMAkGA1UEBhMCR0IxHDAaBgNVBAoME0NoYXJkZXZkIEROIFRlc3QgQ0Ex",
                "DjAMBgNVBAMMBUROIENBMB4XDTI1MDEwMTAwMDAwMFoXDTQ5MTIzMTIzNTk1OVowAjEAMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcD",
                "QgAEaoo8J/nsvwMWuij5dyUE6xtDBpttL82lgKkVoB5CuH1ieCoWg/7qUwGYPDpgJwjCE0gs4Q/2rd1+9/NqqGdy0KM1MDMwDAYD",
                "VR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwIwCgYIKoZIzj0EAwIDSAAwRQIgWqrHu905Y/rk",
                "srwF8lcKcSEdMPjtTr8vp8/VZtDTxGkCIQCo1+vSKmXqo3YSOtSHBdPq2k7nLjSH/C2XlXgpSb36nw==",
            ),
            Expect::Fail,
        ),
    ];
}
