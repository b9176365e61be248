//! Images end to end: the archives `kubelet/images/build.sh` writes are
//! valid for a real client (skopeo), import into the store, unpack into
//! overlayfs form with owners, devices, xattrs and whiteouts right, and give
//! the expected view through a real overlay mount; `docker save` archives
//! (built here, there is no Docker engine) import too; corrupted and
//! escaping content is refused; removal and GC keep what is used.
//!
//! Tests that unpack (owners, device nodes) or mount need root and are
//! `#[ignore]`d; `scripts/test.sh` runs them as root.

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use skiff_runtime::image::digest::Digest;
use skiff_runtime::image::error::ImageError;
use skiff_runtime::image::manifest::{OCI_LAYER, OCI_LAYER_GZIP};
use skiff_runtime::image::{
    DiskUsage, GcPolicy, ImageStore, InUse, Reference, import_archive, import_dir, import_oci_dir,
};

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("skiff-rt-img-test-")
        .tempdir()
        .unwrap()
}

/// Runs kubelet/images/build.sh into `out`.
fn build_images(out: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/build.sh");
    let status = Command::new("bash")
        .arg(&script)
        .arg(out)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{} failed", script.display());
    for name in ["skiff-busybox", "skiff-httpd", "skiff-layers"] {
        assert!(
            out.join(format!("{name}.tar")).is_file(),
            "{name}.tar missing"
        );
    }
}

fn sha256_file(p: &Path) -> Digest {
    Digest::of(&fs::read(p).unwrap())
}

fn xattr_of(p: &Path, name: &str) -> Option<Vec<u8>> {
    xattr::get(p, name).unwrap()
}

/// An image layout with the given layer tars (gzipped when `gzip`), written
/// by hand so tests can put anything in layers.
fn write_layout(dir: &Path, name: &str, layers: &[Vec<u8>], gzip: bool) -> Digest {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| -> (Digest, usize) {
        let d = Digest::of(data);
        fs::write(blobs.join(d.hex()), data).unwrap();
        (d, data.len())
    };
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for tar in layers {
        diff_ids.push(format!("\"{}\"", Digest::of(tar)));
        let (blob, media_type) = if gzip {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar).unwrap();
            (e.finish().unwrap(), OCI_LAYER_GZIP)
        } else {
            (tar.clone(), OCI_LAYER)
        };
        let (d, n) = put(&blob);
        descs.push(format!(
            r#"{{"mediaType":"{media_type}","digest":"{d}","size":{n}}}"#
        ));
    }
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["sh"]}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        diff_ids.join(",")
    );
    let (cd, cn) = put(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{cn}}},"layers":[{}]}}"#,
        descs.join(",")
    );
    let (md, mn) = put(manifest.as_bytes());
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    fs::write(
        dir.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{md}","size":{mn},"annotations":{{"org.opencontainers.image.ref.name":"{name}"}}}}]}}"#
        ),
    )
    .unwrap();
    cd
}

/// Builds a layer tar with the tar crate; `f` adds entries.
fn layer(f: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    f(&mut b);
    b.into_inner().unwrap()
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(1_600_000_000);
    h
}

/// Unmounts on drop, so a failing assertion does not leave a mount behind.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
#[ignore = "needs root: build.sh creates device nodes and file owners (or fakeroot)"]
fn build_sh_archives_are_valid_oci_archives_for_skopeo() {
    let tmp = tempdir();
    build_images(tmp.path());
    let expect = [
        ("skiff-busybox", 1),
        ("skiff-httpd", 2),
        ("skiff-layers", 3),
    ];
    let mut base_layers = HashSet::new();
    for (name, nlayers) in expect {
        let archive = format!(
            "oci-archive:{}",
            tmp.path().join(format!("{name}.tar")).display()
        );
        let out = Command::new("skopeo")
            .args(["inspect", &archive])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo inspect {archive}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["Os"], "linux");
        assert_eq!(v["Layers"].as_array().unwrap().len(), nlayers, "{name}");
        base_layers.insert(v["Layers"][0].as_str().unwrap().to_owned());

        let out = Command::new("skopeo")
            .args(["inspect", "--config", &archive])
            .output()
            .unwrap();
        assert!(out.status.success());
        let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            config["rootfs"]["diff_ids"].as_array().unwrap().len(),
            nlayers
        );
        if name == "skiff-httpd" {
            assert_eq!(
                config["config"]["Entrypoint"],
                serde_json::json!(["/bin/httpd", "-f", "-v"])
            );
            assert_eq!(
                config["config"]["Cmd"],
                serde_json::json!(["-p", "80", "-h", "/var/www"])
            );
            assert!(config["config"]["ExposedPorts"]["80/tcp"].is_object());
        }
    }
    assert_eq!(
        base_layers.len(),
        1,
        "the three images share their base layer"
    );

    // Deterministic: a second build gives the same bytes.
    let again = tempdir();
    build_images(again.path());
    for (name, _) in expect {
        let f = format!("{name}.tar");
        assert_eq!(
            sha256_file(&tmp.path().join(&f)),
            sha256_file(&again.path().join(&f)),
            "{f} differs between two builds"
        );
    }
}

#[test]
#[ignore = "needs root: unpacking keeps owners and creates device nodes; mounts overlayfs"]
fn imported_images_unpack_into_overlayfs_form() {
    let tmp = tempdir();
    let archives = tmp.path().join("archives");
    build_images(&archives);
    // A file that is not an image must not stop the others.
    fs::write(archives.join("notes.txt"), "not an image").unwrap();
    let store = ImageStore::open(tmp.path().join("store")).unwrap();

    let report = import_dir(&store, &archives).unwrap();
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    assert!(report.failed[0].0.ends_with("notes.txt"));
    assert_eq!(report.imported.len(), 3);
    let names: Vec<String> = store.list().iter().flat_map(|i| i.names.clone()).collect();
    assert_eq!(
        names,
        vec![
            "docker.io/skiff/busybox:latest",
            "docker.io/skiff/httpd:latest",
            "docker.io/skiff/layers:latest"
        ]
    );

    // Short names resolve; ids are the config digests.
    let httpd = store.resolve("skiff/httpd").unwrap();
    let config_blob = store.blobs().read(&httpd.id).unwrap();
    assert_eq!(Digest::of(&config_blob), httpd.id);
    assert_eq!(httpd.config.entrypoint, vec!["/bin/httpd", "-f", "-v"]);
    assert_eq!(httpd.config.cmd, vec!["-p", "80", "-h", "/var/www"]);
    assert_eq!(httpd.config.working_dir.as_deref(), Some("/var/www"));
    assert_eq!(httpd.config.exposed_ports, vec!["80/tcp"]);
    assert!(httpd.config.env.iter().any(|e| e.starts_with("PATH=")));
    assert_eq!(store.resolve(httpd.id.short()).unwrap().id, httpd.id);
    assert_eq!(store.resolve(&httpd.id.to_string()).unwrap().id, httpd.id);
    assert!(store.get("skiff/nope").unwrap().is_none());

    // Prepare all three: the base layer is unpacked once and shared.
    let busybox = store.prepare("skiff/busybox").unwrap();
    let http = store.prepare("docker.io/skiff/httpd:latest").unwrap();
    let layers = store.prepare("skiff/layers:latest").unwrap();
    assert_eq!(busybox.lower_dirs.len(), 1);
    assert_eq!(http.lower_dirs.len(), 2);
    assert_eq!(layers.lower_dirs.len(), 3);
    let base = &busybox.lower_dirs[0];
    assert_eq!(http.lower_dirs[1], *base, "lower dirs are top-most first");
    assert_eq!(layers.lower_dirs[2], *base);
    assert_eq!(store.layers().list().unwrap().len(), 4);
    for (dir, l) in layers.lower_dirs.iter().rev().zip(&layers.image.layers) {
        assert_eq!(dir, &store.root().join("layers").join(l.diff_id.hex()));
    }
    let base_inode = fs::metadata(base).unwrap().ino();
    store.prepare("skiff/busybox").unwrap();
    assert_eq!(
        fs::metadata(base).unwrap().ino(),
        base_inode,
        "not unpacked again"
    );
    assert_eq!(
        layers.lowerdir_option(),
        layers
            .lower_dirs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    );

    // Base layer: busybox and its applets, modes.
    let bb = fs::metadata(base.join("bin/busybox")).unwrap();
    assert_eq!(bb.mode() & 0o7777, 0o755);
    assert_eq!(
        fs::read_link(base.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(
        fs::metadata(base.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );
    assert_eq!(
        fs::metadata(base.join("root")).unwrap().mode() & 0o7777,
        0o700
    );
    assert_eq!(fs::metadata(base).unwrap().mode() & 0o7777, 0o755);
    assert_eq!(bb.mtime(), 1_700_000_000);

    // Layer 2: a whiteout device and an opaque directory; no .wh. files.
    let l2 = &layers.lower_dirs[1];
    let motd = fs::symlink_metadata(l2.join("etc/motd")).unwrap();
    assert!(
        motd.file_type().is_char_device(),
        "whiteout is a char device"
    );
    assert_eq!(motd.rdev(), 0, "whiteout is device 0/0");
    assert_eq!(
        xattr_of(&l2.join("usr/share/skiff"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(xattr_of(&l2.join("etc"), "trusted.overlay.opaque").is_none());
    assert!(!l2.join("etc/.wh.motd").exists());
    assert!(!l2.join("usr/share/skiff/.wh..wh..opq").exists());

    // Layer 3: owners, modes, links, devices, FIFOs, xattrs.
    let srv = layers.lower_dirs[0].join("srv");
    let owned = fs::metadata(srv.join("owned.txt")).unwrap();
    assert_eq!(
        (owned.uid(), owned.gid(), owned.mode() & 0o7777),
        (1000, 1000, 0o640)
    );
    assert_eq!(
        fs::metadata(srv.join("suid")).unwrap().mode() & 0o7777,
        0o4755
    );
    let null = fs::metadata(srv.join("null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    assert_eq!(null.mode() & 0o7777, 0o666);
    assert!(
        fs::metadata(srv.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let hello = fs::metadata(srv.join("hello.txt")).unwrap();
    let hard = fs::metadata(srv.join("hardlink.txt")).unwrap();
    assert_eq!(hello.ino(), hard.ino(), "hard links share an inode");
    assert_eq!(hello.nlink(), 2);
    assert_eq!(
        fs::read_link(srv.join("symlink")).unwrap(),
        Path::new("hello.txt")
    );
    assert_eq!(
        xattr_of(&srv.join("xattr.txt"), "user.skiff").as_deref(),
        Some(&b"layer3"[..])
    );

    // The merged view through a real read-only overlay mount.
    let merged = tmp.path().join("merged");
    fs::create_dir(&merged).unwrap();
    let opts = format!("lowerdir={}", layers.lowerdir_option());
    nix::mount::mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        nix::mount::MsFlags::MS_RDONLY,
        Some(opts.as_str()),
    )
    .expect("mount overlay");
    let _mount = Mount(merged.clone());
    assert!(
        !merged.join("etc/motd").exists(),
        "whiteout hides /etc/motd"
    );
    assert!(merged.join("etc/passwd").is_file());
    let mut skiff: Vec<String> = fs::read_dir(merged.join("usr/share/skiff"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    skiff.sort();
    assert_eq!(skiff, vec!["version"], "the opaque dir hides old.txt");
    assert_eq!(
        fs::read_to_string(merged.join("usr/share/skiff/version")).unwrap(),
        "v2\n"
    );
    assert_eq!(
        fs::read_to_string(merged.join("srv/symlink")).unwrap(),
        "hello from layer 3\n"
    );
    assert!(merged.join("bin/busybox").is_file());
    drop(_mount);

    // Importing again changes nothing.
    let before = store.list();
    import_dir(&store, &archives).unwrap();
    assert_eq!(
        store.list().iter().map(|i| &i.id).collect::<Vec<_>>(),
        before.iter().map(|i| &i.id).collect::<Vec<_>>()
    );
    // A reopened store sees the same images.
    drop(store);
    let store = ImageStore::open(tmp.path().join("store")).unwrap();
    assert_eq!(store.list().len(), 3);
    assert_eq!(store.resolve("skiff/layers").unwrap().id, layers.image.id);
}

#[test]
#[ignore = "needs root: unpacking keeps owners and creates device nodes"]
fn docker_save_archives_import_and_unpack() {
    let tmp = tempdir();
    let archives = tmp.path().join("archives");
    build_images(&archives);

    // Take skiff/layers apart and write it the way `docker save` does:
    // uncompressed layer.tar files in per-layer directories, the config as
    // <id>.json, manifest.json last, a legacy `repositories` file, and a
    // symlinked layer (as old Docker versions write for repeated layers).
    let layout = tmp.path().join("layout");
    fs::create_dir(&layout).unwrap();
    tar::Archive::new(fs::File::open(archives.join("skiff-layers.tar")).unwrap())
        .unpack(&layout)
        .unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_owned();
    let config = fs::read(blob(&config_digest)).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let add = |b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]| {
        let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
        b.append_data(&mut h, path, data).unwrap();
    };
    let config_name = format!("{}.json", config_digest.trim_start_matches("sha256:"));
    add(&mut b, &config_name, &config);
    let mut layer_paths = Vec::new();
    for (i, l) in manifest["layers"].as_array().unwrap().iter().enumerate() {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(fs::File::open(blob(l["digest"].as_str().unwrap())).unwrap())
            .read_to_end(&mut plain)
            .unwrap();
        let path = format!("layer{i}/layer.tar");
        add(&mut b, &path, &plain);
        layer_paths.push(path);
    }
    // A symlinked copy of layer 0, referenced instead of the real file.
    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
    b.append_link(&mut h, "dup/layer.tar", "../layer0/layer.tar")
        .unwrap();
    layer_paths[0] = "dup/layer.tar".into();
    add(&mut b, "repositories", br#"{"skiff/saved":{"v1":"x"}}"#);
    let manifest_json = serde_json::json!([{
        "Config": config_name,
        "RepoTags": ["skiff/saved:v1", "localhost:5000/saved:v1"],
        "Layers": layer_paths,
    }]);
    add(
        &mut b,
        "manifest.json",
        manifest_json.to_string().as_bytes(),
    );
    let plain_archive = b.into_inner().unwrap();
    let saved = tmp.path().join("saved.tar");
    fs::write(&saved, &plain_archive).unwrap();
    // And `docker save | gzip`.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&plain_archive).unwrap();
    let saved_gz = tmp.path().join("saved.tar.gz");
    fs::write(&saved_gz, e.finish().unwrap()).unwrap();

    for (i, archive) in [&saved, &saved_gz].into_iter().enumerate() {
        let store = ImageStore::open(tmp.path().join(format!("store{i}"))).unwrap();
        let images = import_archive(&store, archive, &[]).unwrap();
        assert_eq!(images.len(), 1);
        let image = &images[0];
        assert_eq!(
            image.id.to_string(),
            config_digest,
            "image id = config digest, as in Docker"
        );
        assert_eq!(
            image.names,
            vec!["docker.io/skiff/saved:v1", "localhost:5000/saved:v1"]
        );
        // Layers stored as they were: uncompressed, so blob digest = diff id.
        for l in &image.layers {
            assert_eq!(l.media_type, OCI_LAYER);
            assert_eq!(l.digest, l.diff_id);
        }
        let prepared = store.prepare("localhost:5000/saved:v1").unwrap();
        assert_eq!(prepared.lower_dirs.len(), 3);
        assert_eq!(prepared.config.working_dir.as_deref(), Some("/srv"));
        let l2 = &prepared.lower_dirs[1];
        assert!(
            fs::symlink_metadata(l2.join("etc/motd"))
                .unwrap()
                .file_type()
                .is_char_device()
        );
        let owned = fs::metadata(prepared.lower_dirs[0].join("srv/owned.txt")).unwrap();
        assert_eq!((owned.uid(), owned.gid()), (1000, 1000));
        // The generated manifest is a stored, verifiable blob.
        let m = store.blobs().read(&image.manifest).unwrap();
        assert!(String::from_utf8(m).unwrap().contains(&config_digest));
    }

    // A name given by the caller replaces the archive's.
    let store = ImageStore::open(tmp.path().join("store-named")).unwrap();
    let images =
        import_archive(&store, &saved, &[Reference::parse("mine/img:1").unwrap()]).unwrap();
    assert_eq!(images[0].names, vec!["docker.io/mine/img:1"]);
}

#[test]
#[ignore = "needs root: xattrs in the security namespace, owners, block devices"]
fn unpack_keeps_metadata_on_disk() {
    let tmp = tempdir();
    let tar = layer(|b| {
        let mut h = header(tar::EntryType::Directory, 0o700, 0);
        h.set_uid(1000);
        h.set_gid(1000);
        b.append_data(&mut h, "home/user/", &[][..]).unwrap();
        b.append_pax_extensions([(
            "SCHILY.xattr.security.capability",
            &[
                1u8, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ][..],
        )])
        .unwrap();
        let mut h = header(tar::EntryType::Regular, 0o755, 4);
        b.append_data(&mut h, "bin/ping", &b"ping"[..]).unwrap();
        let mut h = header(tar::EntryType::Block, 0o660, 0);
        h.set_device_major(7).unwrap();
        h.set_device_minor(0).unwrap();
        h.set_gid(6);
        b.append_data(&mut h, "dev/loop0", &[][..]).unwrap();
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, "etc/abs", "/etc/passwd").unwrap();
        // A long name (GNU longname header).
        let long = format!("deep/{}/f", "d".repeat(150));
        let mut h = header(tar::EntryType::Regular, 0o600, 1);
        b.append_data(&mut h, &long, &b"x"[..]).unwrap();
        // A file replaced later in the same layer by a directory.
        let mut h = header(tar::EntryType::Regular, 0o644, 1);
        b.append_data(&mut h, "swap", &b"f"[..]).unwrap();
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        b.append_data(&mut h, "swap/", &[][..]).unwrap();
    });
    let layout = tmp.path().join("layout");
    write_layout(&layout, "docker.io/test/meta:1", &[tar], false);
    let store = ImageStore::open(tmp.path().join("store")).unwrap();
    import_oci_dir(&store, &layout, &[]).unwrap();
    let p = store.prepare("test/meta:1").unwrap();
    let root = &p.lower_dirs[0];
    let home = fs::metadata(root.join("home/user")).unwrap();
    assert_eq!(
        (home.uid(), home.gid(), home.mode() & 0o7777),
        (1000, 1000, 0o700)
    );
    assert_eq!(
        home.mtime(),
        1_600_000_000,
        "directory mtimes are set after their children"
    );
    let cap = xattr_of(&root.join("bin/ping"), "security.capability").expect("capability xattr");
    assert_eq!(cap[0..4], [1, 0, 0, 2]);
    let lo = fs::metadata(root.join("dev/loop0")).unwrap();
    assert!(lo.file_type().is_block_device());
    assert_eq!(lo.rdev(), nix::sys::stat::makedev(7, 0));
    assert_eq!((lo.gid(), lo.mode() & 0o7777), (6, 0o660));
    assert_eq!(
        fs::read_link(root.join("etc/abs")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(
        fs::read(root.join(format!("deep/{}/f", "d".repeat(150)))).unwrap(),
        b"x"
    );
    assert!(root.join("swap").is_dir());
}

#[test]
fn escaping_layers_are_refused_and_leave_nothing() {
    let tmp = tempdir();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "through a symlink",
            layer(|b| {
                let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                b.append_link(&mut h, "escape", &outside).unwrap();
                let mut h = header(tar::EntryType::Regular, 0o644, 5);
                b.append_data(&mut h, "escape/pwned", &b"pwned"[..])
                    .unwrap();
            }),
        ),
        (
            "hard link out of the layer",
            layer(|b| {
                let mut h = header(tar::EntryType::Link, 0o644, 0);
                b.append_link(&mut h, "shadow", "etc/shadow").unwrap();
            }),
        ),
        (
            "dot-dot",
            layer(|b| {
                let mut h = header(tar::EntryType::Regular, 0o644, 5);
                let name = b"../../pwned";
                h.as_old_mut().name[..name.len()].copy_from_slice(name);
                h.set_cksum();
                b.append(&h, &b"pwned"[..]).unwrap();
            }),
        ),
    ];
    for (i, (what, tar)) in cases.into_iter().enumerate() {
        let layout = tmp.path().join(format!("layout{i}"));
        write_layout(&layout, "docker.io/test/evil:1", &[tar], true);
        let store = ImageStore::open(tmp.path().join(format!("store{i}"))).unwrap();
        import_oci_dir(&store, &layout, &[]).unwrap();
        let err = store.prepare("test/evil:1").unwrap_err();
        assert!(
            matches!(err, ImageError::UnsafePath { .. }),
            "{what}: {err}"
        );
        assert_eq!(
            fs::read_dir(&outside).unwrap().count(),
            0,
            "{what}: wrote outside"
        );
        assert!(!tmp.path().join("pwned").exists());
        // Neither the layer nor its temporary directory is left.
        assert_eq!(
            fs::read_dir(store.root().join("layers")).unwrap().count(),
            0,
            "{what}"
        );
    }
}

#[test]
fn corrupted_content_is_refused() {
    let tmp = tempdir();
    let good = layer(|b| {
        let mut h = header(tar::EntryType::Regular, 0o644, 2);
        b.append_data(&mut h, "hi", &b"hi"[..]).unwrap();
    });

    // A blob whose bytes do not match its name, in a layout directory...
    let layout = tmp.path().join("layout");
    let config = write_layout(
        &layout,
        "docker.io/test/bad:1",
        std::slice::from_ref(&good),
        true,
    );
    let config_path = layout.join("blobs/sha256").join(config.hex());
    let mut data = fs::read(&config_path).unwrap();
    data[10] ^= 1;
    fs::write(&config_path, &data).unwrap();
    let store = ImageStore::open(tmp.path().join("store")).unwrap();
    let err = import_oci_dir(&store, &layout, &[]).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(err.to_string().contains(&config.to_string()), "{err}");
    assert!(store.list().is_empty());
    assert!(!store.blobs().contains(&config));

    // ...and in an archive.
    let archive = tmp.path().join("bad.tar");
    let mut b = tar::Builder::new(fs::File::create(&archive).unwrap());
    b.append_dir_all(".", &layout).unwrap();
    b.finish().unwrap();
    drop(b);
    let err = import_archive(&store, &archive, &[]).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(store.list().is_empty());

    // A layer whose uncompressed content does not match the config's diff
    // id: imported (blobs are right) but refused at unpack.
    let layout2 = tmp.path().join("layout2");
    write_layout(&layout2, "docker.io/test/diff:1", &[good], true);
    let cfg_path = fs::read_dir(layout2.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| fs::read_to_string(p).is_ok_and(|s| s.contains("diff_ids")))
        .unwrap();
    // Point the config at a wrong diff id and re-link config and manifest.
    let wrong = Digest::of(b"something else");
    let cfg = fs::read_to_string(&cfg_path).unwrap();
    let old_diff = cfg
        .split("diff_ids\":[\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let new_cfg = cfg.replace(&old_diff, &wrong.to_string());
    let new_cfg_digest = Digest::of(new_cfg.as_bytes());
    fs::write(
        layout2.join("blobs/sha256").join(new_cfg_digest.hex()),
        &new_cfg,
    )
    .unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout2.join("index.json")).unwrap()).unwrap();
    let mdigest = index["manifests"][0]["digest"].as_str().unwrap();
    let m = fs::read_to_string(
        layout2
            .join("blobs/sha256")
            .join(mdigest.trim_start_matches("sha256:")),
    )
    .unwrap();
    let old_cfg_digest = Digest::of(cfg.as_bytes()).to_string();
    let new_m = m
        .replace(&old_cfg_digest, &new_cfg_digest.to_string())
        .replace(
            &format!("\"size\":{}", cfg.len()),
            &format!("\"size\":{}", new_cfg.len()),
        );
    let new_md = Digest::of(new_m.as_bytes());
    fs::write(layout2.join("blobs/sha256").join(new_md.hex()), &new_m).unwrap();
    fs::write(
        layout2.join("index.json"),
        index
            .to_string()
            .replace(mdigest, &new_md.to_string())
            .replace(
                &format!("\"size\":{}", m.len()),
                &format!("\"size\":{}", new_m.len()),
            ),
    )
    .unwrap();
    import_oci_dir(&store, &layout2, &[]).unwrap();
    let err = store.prepare("test/diff:1").unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&wrong.to_string()), "{err}");
    assert!(!store.layers().contains(&wrong));
    assert_eq!(
        fs::read_dir(store.root().join("layers")).unwrap().count(),
        0
    );
}

#[test]
fn names_tags_and_removal() {
    let tmp = tempdir();
    let mk = |i: u8| {
        layer(|b| {
            let mut h = header(tar::EntryType::Regular, 0o644, 1);
            b.append_data(&mut h, "f", &[i][..]).unwrap();
        })
    };
    let store = ImageStore::open(tmp.path().join("store")).unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    write_layout(&a, "docker.io/library/app:1", &[mk(1)], true);
    write_layout(&b, "docker.io/library/app:2", &[mk(2)], true);
    let ia = import_oci_dir(&store, &a, &[]).unwrap().remove(0);
    let ib = import_oci_dir(&store, &b, &[]).unwrap().remove(0);
    assert_ne!(ia.id, ib.id);
    // Tag app:latest onto a, then move it to b (a keeps app:1).
    let latest = Reference::parse("app").unwrap();
    store
        .register(&ia.manifest, std::slice::from_ref(&latest))
        .unwrap();
    assert_eq!(store.resolve("app").unwrap().id, ia.id);
    store.register(&ib.manifest, &[latest]).unwrap();
    assert_eq!(store.resolve("app:latest").unwrap().id, ib.id);
    assert_eq!(
        store.resolve("app:1").unwrap().names,
        vec!["docker.io/library/app:1"]
    );
    // By repo digest.
    let by_digest = format!("app@{}", ib.manifest);
    assert_eq!(store.resolve(&by_digest).unwrap().id, ib.id);

    // Removing a tag of an image with two names only untags.
    let r = store.remove("app:2").unwrap();
    assert_eq!(r.untagged, vec!["docker.io/library/app:2"]);
    assert!(r.images.is_empty());
    assert_eq!(store.resolve("app").unwrap().id, ib.id);
    // Removing its last name removes the image.
    let r = store.remove("docker.io/library/app:latest").unwrap();
    assert_eq!(r.images, vec![ib.id.clone()]);
    assert!(store.get(&ib.id.to_string()).unwrap().is_none());
    // Removing by id removes the image with all its names.
    let r = store.remove(&ia.id.to_string()).unwrap();
    assert_eq!(r.images, vec![ia.id.clone()]);
    assert!(store.list().is_empty());
    let err = store.remove("app:1").unwrap_err();
    assert!(matches!(err, ImageError::ImageNotFound(_)), "{err}");
}

/// A disk whose usage is 60 % plus 10 % per image in the store, so that
/// removing images frees space the way GC expects.
struct CountingDisk<'a>(&'a ImageStore);

impl DiskUsage for CountingDisk<'_> {
    fn used_percent(&self, _: &Path) -> skiff_runtime::image::error::Result<f64> {
        Ok(60.0 + 10.0 * self.0.list().len() as f64)
    }
}

#[test]
#[ignore = "needs root: unpacking keeps owners and creates device nodes"]
fn gc_removes_what_no_image_uses_and_lru_images_above_threshold() {
    let tmp = tempdir();
    let archives = tmp.path().join("archives");
    build_images(&archives);
    let store = ImageStore::open(tmp.path().join("store")).unwrap();
    import_dir(&store, &archives).unwrap();
    for name in ["skiff/busybox", "skiff/httpd", "skiff/layers"] {
        store.prepare(name).unwrap();
    }
    let httpd = store.resolve("skiff/httpd").unwrap();
    let www = httpd.layers[1].clone();
    let base = httpd.layers[0].clone();
    let disk = CountingDisk(&store);

    // Remove httpd: with the disk below the threshold, GC only prunes what
    // no image uses.
    store.remove("skiff/httpd").unwrap();
    let policy = GcPolicy {
        high_percent: 85.0,
        low_percent: 80.0,
    };
    let r = store.gc(&policy, &InUse::default(), &disk).unwrap();
    assert_eq!(r.layers, vec![www.diff_id.clone()]);
    assert!(r.images.is_empty());
    for d in [&www.digest, &httpd.id, &httpd.manifest] {
        assert!(r.blobs.contains(d), "{d} not removed");
        assert!(!store.blobs().contains(d));
    }
    assert!(
        !r.blobs.contains(&base.digest),
        "the base is still used by two images"
    );
    assert!(store.layers().contains(&base.diff_id));
    assert!(r.freed_bytes > 0);

    // A layer in use by a running container survives its image's removal.
    let layers_img = store.resolve("skiff/layers").unwrap();
    let top = layers_img.layers[2].diff_id.clone();
    store.remove("skiff/layers").unwrap();
    let in_use = InUse {
        layers: HashSet::from([top.clone()]),
        ..InUse::default()
    };
    let r = store.gc(&policy, &in_use, &disk).unwrap();
    assert!(!r.layers.contains(&top) && store.layers().contains(&top));
    assert!(r.layers.contains(&layers_img.layers[1].diff_id));

    // Re-import and use httpd and layers (after busybox, so busybox is the
    // least recently used): 3 images = 90 % > 85 %. Busybox goes first;
    // 2 images = 80 % is not below the low mark, so layers (unused) goes
    // too; httpd is in use and stays.
    import_dir(&store, &archives).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100)); // last_used has 1 s resolution
    store.prepare("skiff/httpd").unwrap();
    store.prepare("skiff/layers").unwrap();
    let busybox_id = store.resolve("skiff/busybox").unwrap().id;
    let httpd_id = store.resolve("skiff/httpd").unwrap().id;
    let in_use = InUse {
        images: HashSet::from([httpd_id.clone()]),
        ..InUse::default()
    };
    let r = store.gc(&policy, &in_use, &disk).unwrap();
    assert_eq!(r.images, vec![busybox_id, layers_img.id.clone()]);
    assert_eq!(store.list().len(), 1);
    assert_eq!(store.resolve("skiff/httpd").unwrap().id, httpd_id);
    assert!(
        store.layers().contains(&base.diff_id),
        "httpd still uses the base"
    );
    assert_eq!(store.layers().list().unwrap().len(), 2);
    assert_eq!((r.used_percent_before, r.used_percent_after), (90.0, 70.0));
}

#[test]
fn concurrent_prepares_unpack_each_layer_once() {
    let tmp = tempdir();
    let tar = layer(|b| {
        for i in 0..200 {
            let mut h = header(tar::EntryType::Regular, 0o644, 4);
            b.append_data(&mut h, format!("d/f{i}"), &b"data"[..])
                .unwrap();
        }
    });
    let layout = tmp.path().join("layout");
    write_layout(&layout, "docker.io/test/many:1", &[tar], true);
    let store = ImageStore::open(tmp.path().join("store")).unwrap();
    import_oci_dir(&store, &layout, &[]).unwrap();
    let dirs: Vec<PathBuf> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| store.prepare("test/many:1").unwrap().lower_dirs[0].clone()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(dirs.windows(2).all(|w| w[0] == w[1]));
    let entries: Vec<String> = fs::read_dir(store.root().join("layers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        entries.len(),
        1,
        "one layer dir, no temporary leftovers: {entries:?}"
    );
    assert_eq!(fs::read_dir(dirs[0].join("d")).unwrap().count(), 200);
    assert_eq!(
        fs::metadata(&dirs[0]).unwrap().permissions().mode() & 0o777,
        0o755
    );
}
