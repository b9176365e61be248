//! The CRI subset must stay wire-compatible with upstream's runtime.v1, so
//! that crictl and other CRI clients can talk to Skiff's runtime: these tests
//! pin field numbers that a careless edit of `api.proto` would change.

use prost::Message;
use skiff_proto::cri;

/// Tag byte of a field: (number << 3) | wire type (0 varint, 2 bytes).
fn tag(number: u8, wire_type: u8) -> u8 {
    (number << 3) | wire_type
}

#[test]
fn container_status_fields_have_upstream_numbers() {
    let status = cri::ContainerStatus {
        exit_code: 137,
        ..Default::default()
    };
    // exit_code = 7, varint 137 = 0x89 0x01
    assert_eq!(status.encode_to_vec(), vec![tag(7, 0), 0x89, 0x01]);

    let status = cri::ContainerStatus {
        reason: "OOMKilled".into(),
        ..Default::default()
    };
    let bytes = status.encode_to_vec();
    assert_eq!(bytes[..2], [tag(10, 2), 9]);
    assert_eq!(&bytes[2..], b"OOMKilled");
}

#[test]
fn image_spec_keeps_its_high_field_numbers() {
    // user_specified_image = 18 needs a two-byte tag: (18 << 3 | 2) = 146.
    let spec = cri::ImageSpec {
        user_specified_image: "busybox".into(),
        ..Default::default()
    };
    assert_eq!(spec.encode_to_vec()[..3], [146, 1, 7]);
}

#[test]
fn run_as_group_and_no_new_privs_numbers() {
    let ctx = cri::LinuxContainerSecurityContext {
        no_new_privs: true,
        run_as_group: Some(cri::Int64Value { value: 5 }),
        ..Default::default()
    };
    // no_new_privs = 11 (varint), run_as_group = 12 (message {1: 5}).
    assert_eq!(
        ctx.encode_to_vec(),
        vec![tag(11, 0), 1, tag(12, 2), 2, tag(1, 0), 5]
    );
}

#[test]
fn a_message_from_a_newer_peer_decodes_with_unknown_fields_skipped() {
    // A PodSandboxConfig with `windows` (field 9, not in our subset) and a
    // hostname: the hostname survives, the rest is skipped without error.
    let mut bytes = vec![tag(2, 2), 3];
    bytes.extend_from_slice(b"web");
    bytes.extend_from_slice(&[tag(9, 2), 2, tag(1, 2), 0]);
    let config = cri::PodSandboxConfig::decode(bytes.as_slice()).unwrap();
    assert_eq!(config.hostname, "web");
}
