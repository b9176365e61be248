//! The volume pieces together: a pod with every kind, planned, set up on a
//! temporary directory with the fake mounter, mounted into containers, and
//! torn down.

use super::*;
use crate::pods::volumes::mounter::FakeMounter;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use serde_json::json;

fn pod(host: &Path) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "labels": {"app": "web"}},
        "spec": {
            "containers": [{
                "name": "app",
                "env": [{"name": "POD", "value": "web"}],
                "volumeMounts": [
                    {"name": "cache", "mountPath": "/cache"},
                    {"name": "cache", "mountPath": "/logs", "subPathExpr": "logs/$(POD)"},
                    {"name": "ram", "mountPath": "/ram"},
                    {"name": "cfg", "mountPath": "/etc/cfg"},
                    {"name": "cfg", "mountPath": "/etc/color", "subPath": "color"},
                    {"name": "creds", "mountPath": "/etc/creds"},
                    {"name": "info", "mountPath": "/etc/info"},
                    {"name": "host", "mountPath": "/host", "readOnly": true}
                ]
            }],
            "volumes": [
                {"name": "cache", "emptyDir": {}},
                {"name": "ram", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                {"name": "cfg", "configMap": {"name": "cfg"}},
                {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o400,
                    "items": [{"key": "token", "path": "auth/token"}]}},
                {"name": "info", "downwardAPI": {"items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                {"name": "host", "hostPath": {"path": host.display().to_string(), "type": "Directory"}}
            ]
        }
    }))
    .unwrap()
}

fn sources() -> Sources {
    let mut s = Sources::default();
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "cfg"}, "data": {"color": "blue"}}))
            .unwrap();
    let secret: Secret = serde_json::from_value(
        json!({"metadata": {"name": "creds"}, "data": {"token": "dDBrM24="}}),
    )
    .unwrap();
    s.config_maps.insert("cfg".into(), cm);
    s.secrets.insert("creds".into(), secret);
    s
}

#[test]
fn a_pod_with_every_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let pods = tmp.path().join("pods");
    let host = tmp.path().join("host");
    std::fs::create_dir(&host).unwrap();
    let p = pod(&host);
    let planned = plan(&p, &sources(), &pods);
    let names: Vec<&str> = planned.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["cache", "ram", "cfg", "creds", "info", "host"]);
    let mounter = FakeMounter::default();
    let mut ready = BTreeMap::new();
    for (name, v) in &planned {
        let v = v.as_ref().unwrap_or_else(|e| panic!("{name}: {e}"));
        set_up(&mounter, v).unwrap();
        ready.insert(name.clone(), Ready::from(v));
    }
    let vol = |plugin: &str, name: &str| pods.join("u1/volumes").join(plugin).join(name);
    assert_eq!(
        mounter.calls(),
        [
            format!("tmpfs {} 16777216", vol(EMPTY_DIR, "ram").display()),
            format!("tmpfs {} -", vol(SECRET, "creds").display()),
        ]
    );
    assert_eq!(
        std::fs::read_to_string(vol(CONFIG_MAP, "cfg").join("color")).unwrap(),
        "blue"
    );
    assert_eq!(
        std::fs::read_to_string(vol(SECRET, "creds").join("auth/token")).unwrap(),
        "t0k3n"
    );
    assert_eq!(
        std::fs::read_to_string(vol(DOWNWARD_API, "info").join("labels")).unwrap(),
        "app=\"web\""
    );

    let c = &p.spec.as_ref().unwrap().containers[0];
    let env = BTreeMap::from([("POD".to_string(), "web".to_string())]);
    let mounts = container_mounts(c, &ready, &env).unwrap();
    let got: Vec<(String, String, bool)> = mounts
        .iter()
        .map(|m| (m.container_path.clone(), m.host_path.clone(), m.readonly))
        .collect();
    let canon = |p: PathBuf| p.canonicalize().unwrap().display().to_string();
    let plain = |p: PathBuf| p.display().to_string();
    let cfg_color = canon(vol(CONFIG_MAP, "cfg").join("color"));
    assert!(
        cfg_color.contains("/..2"),
        "the subPath is the file itself: {cfg_color}"
    );
    assert_eq!(
        got,
        [
            ("/cache".into(), plain(vol(EMPTY_DIR, "cache")), false),
            (
                "/logs".into(),
                canon(vol(EMPTY_DIR, "cache").join("logs/web")),
                false
            ),
            ("/ram".into(), plain(vol(EMPTY_DIR, "ram")), false),
            ("/etc/cfg".into(), plain(vol(CONFIG_MAP, "cfg")), true),
            ("/etc/color".into(), cfg_color, true),
            ("/etc/creds".into(), plain(vol(SECRET, "creds")), true),
            ("/etc/info".into(), plain(vol(DOWNWARD_API, "info")), true),
            ("/host".into(), plain(host.clone()), true),
        ]
    );

    // The pod goes: its tmpfs mounts are undone, deepest first.
    tear_down(&mounter, &pods, "u1").unwrap();
    assert_eq!(mounter.calls().len(), 4);
    assert!(mounter.mounts_under(&pods).is_empty());
}

#[test]
fn volumes_that_cannot_be_set_up() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("file");
    std::fs::write(&file, "").unwrap();
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "shop", "uid": "u1"},
        "spec": {"containers": [], "volumes": [
            {"name": "cfg", "configMap": {"name": "nope"}},
            {"name": "maybe", "configMap": {"name": "nope", "optional": true}},
            {"name": "host", "hostPath": {"path": file.display().to_string(), "type": "Directory"}},
            {"name": "claim", "persistentVolumeClaim": {"claimName": "data"}},
            {"name": "nfs", "nfs": {"server": "nas", "path": "/"}}
        ]}
    }))
    .unwrap();
    let mounter = FakeMounter::default();
    let outcomes: Vec<(String, String)> = plan(&p, &Sources::default(), tmp.path())
        .into_iter()
        .map(|(name, v)| {
            let outcome = v
                .and_then(|v| set_up(&mounter, &v))
                .map_or_else(|e| e.to_string(), |_| "ok".into());
            (name, outcome)
        })
        .collect();
    let want = [
        ("cfg", "configmaps \"nope\" not found".to_string()),
        ("maybe", "ok".into()),
        (
            "host",
            format!("hostPath type check failed: {} is not a directory", file.display()),
        ),
        ("claim", "persistentvolumeclaims \"data\" not found".into()),
        (
            "nfs",
            "unsupported volume type: this kubelet mounts emptyDir, hostPath, configMap, secret, downwardAPI, projected and persistentVolumeClaim volumes".into(),
        ),
    ];
    let want: Vec<(String, String)> = want.into_iter().map(|(a, b)| (a.to_string(), b)).collect();
    assert_eq!(outcomes, want);
}

#[test]
fn sub_paths_stay_in_their_volume() {
    let tmp = tempfile::tempdir().unwrap();
    let vol = tmp.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::os::unix::fs::symlink("/etc", vol.join("out")).unwrap();
    std::fs::write(vol.join("file"), "x").unwrap();
    let ready = BTreeMap::from([(
        "v".to_string(),
        Ready {
            path: vol.clone(),
            read_only: false,
        },
    )]);
    let mount = |sub: &str| {
        let c: Container = serde_json::from_value(json!({"name": "c", "volumeMounts": [
            {"name": "v", "mountPath": "/m", "subPath": sub}]}))
        .unwrap();
        container_mounts(&c, &ready, &BTreeMap::new()).map(|m| m[0].host_path.clone())
    };
    let base = vol.canonicalize().unwrap();
    for (sub, want) in [
        ("file", Ok(base.join("file"))),
        ("new/dir", Ok(base.join("new/dir"))),
        (
            "../x",
            Err("invalid subPath \"../x\": must be a relative path without '..'"),
        ),
        (
            "/etc",
            Err("invalid subPath \"/etc\": must be a relative path without '..'"),
        ),
        ("out", Err("subPath \"out\" leads outside its volume")),
    ] {
        let got = mount(sub);
        match want {
            Ok(p) => assert_eq!(got.unwrap(), p.display().to_string(), "{sub}"),
            Err(w) => assert_eq!(got.unwrap_err().to_string(), w, "{sub}"),
        }
    }
    assert!(vol.join("new/dir").is_dir(), "a missing subPath is made");
    let c: Container = serde_json::from_value(
        json!({"name": "c", "volumeMounts": [{"name": "other", "mountPath": "/m"}]}),
    )
    .unwrap();
    assert_eq!(
        container_mounts(&c, &ready, &BTreeMap::new())
            .unwrap_err()
            .to_string(),
        "unable to find volume \"other\" to mount into the container"
    );
}
