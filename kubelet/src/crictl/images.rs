//! `crictl images`: the images the runtime holds, one line per tag.

use std::io::Write;

use skiff_proto::cri;

use super::{Cri, CrictlError, short_id, table};
use crate::runtime::Runtime;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show whole image ids.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only the image ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Only this image (`busybox`, `name:tag`, `name@sha256:…`).
    pub image: Option<String>,
}

/// `busybox:1.36` → (`busybox`, `1.36`); `host:5000/app` has no tag.
pub fn split_tag(reference: &str) -> (&str, &str) {
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[name_start..].rfind(':') {
        Some(i) => (
            &reference[..name_start + i],
            &reference[name_start + i + 1..],
        ),
        None => (reference, "<none>"),
    }
}

/// A size in Go's `units.HumanSizeWithPrecision(size, 3)`: decimal units,
/// three significant digits (`5.59MB`, `12.3kB`, `512B`).
pub fn human_size(size: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = size as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    // %.3g: three significant digits, trailing zeros dropped.
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    let mut s = format!("{value:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[unit])
}

/// `IMAGE  TAG  IMAGE ID  SIZE`, sorted by name.
pub fn render(images: &[cri::Image], no_trunc: bool) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    for i in images {
        let id = short_id(&i.id, "sha256:", no_trunc);
        let size = human_size(i.size);
        if i.repo_tags.is_empty() {
            let repo = i
                .repo_digests
                .first()
                .map_or("<none>", |d| d.split('@').next().unwrap_or("<none>"));
            rows.push(vec![repo.into(), "<none>".into(), id, size]);
            continue;
        }
        for tag in &i.repo_tags {
            let (repo, tag) = split_tag(tag);
            rows.push(vec![repo.into(), tag.into(), id.clone(), size.clone()]);
        }
    }
    rows.sort();
    table(&["IMAGE", "TAG", "IMAGE ID", "SIZE"], &rows)
}

pub async fn run(cri: &Cri, args: &Args, out: &mut dyn Write) -> Result<(), CrictlError> {
    let images = match &args.image {
        Some(name) => {
            let found = cri
                .call("ImageStatus", cri.client.image_status(name))
                .await?;
            found.into_iter().collect()
        }
        None => cri.call("ListImages", cri.client.list_images()).await?,
    };
    if args.quiet {
        for i in &images {
            writeln!(out, "{}", i.id)?;
        }
    } else {
        out.write_all(render(&images, args.no_trunc).as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_after_the_last_slash() {
        assert_eq!(
            split_tag("docker.io/library/busybox:1.36"),
            ("docker.io/library/busybox", "1.36")
        );
        assert_eq!(
            split_tag("localhost:5000/app"),
            ("localhost:5000/app", "<none>")
        );
        assert_eq!(
            split_tag("localhost:5000/app:v1"),
            ("localhost:5000/app", "v1")
        );
    }

    #[test]
    fn sizes_read_like_go_units() {
        for (n, want) in [
            (0, "0B"),
            (512, "512B"),
            (1000, "1kB"),
            (12_345, "12.3kB"),
            (5_590_000, "5.59MB"),
            (5_000_000, "5MB"),
            (123_456_789, "123MB"),
            (1_500_000_000, "1.5GB"),
        ] {
            assert_eq!(human_size(n), want, "{n}");
        }
    }

    #[test]
    fn one_line_per_tag() {
        let images = vec![
            cri::Image {
                id: "sha256:9f2c0ffee0123456789abcdef".into(),
                repo_tags: vec![
                    "docker.io/skiff/shell:latest".into(),
                    "docker.io/skiff/shell:1.0".into(),
                ],
                repo_digests: vec!["docker.io/skiff/shell@sha256:aa".into()],
                size: 1_234_567,
                ..Default::default()
            },
            cri::Image {
                id: "sha256:0000111122223333".into(),
                repo_tags: vec![],
                repo_digests: vec!["docker.io/skiff/old@sha256:bb".into()],
                size: 999,
                ..Default::default()
            },
        ];
        let want = "\
IMAGE                   TAG                 IMAGE ID            SIZE
docker.io/skiff/old     <none>              0000111122223       999B
docker.io/skiff/shell   1.0                 9f2c0ffee0123       1.23MB
docker.io/skiff/shell   latest              9f2c0ffee0123       1.23MB
";
        assert_eq!(render(&images, false), want);
        assert!(render(&images, true).contains("sha256:9f2c0ffee0123456789abcdef"));
    }
}
