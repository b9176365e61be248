//! `crictl pull <image>`: asks the runtime to pull an image.

use std::io::Write;

use skiff_proto::cri;

use super::{Cri, CrictlError};
use crate::runtime::Runtime;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Registry credentials, `USERNAME[:PASSWORD]`.
    #[arg(long)]
    pub creds: Option<String>,
    /// The image: `busybox`, `registry:5000/app:v1`, `name@sha256:…`.
    pub image: String,
}

/// The pull's `AuthConfig` from `--creds`.
pub fn auth(creds: Option<&str>) -> Option<cri::AuthConfig> {
    let creds = creds?;
    let (user, pass) = creds.split_once(':').unwrap_or((creds, ""));
    Some(cri::AuthConfig {
        username: user.into(),
        password: pass.into(),
        ..Default::default()
    })
}

pub async fn run(cri: &Cri, args: &Args, out: &mut dyn Write) -> Result<(), CrictlError> {
    // A pull takes as long as the layers do: no call timeout.
    let unbounded = Cri {
        client: cri.client.clone(),
        endpoint: cri.endpoint.clone(),
        timeout: None,
    };
    let image_ref = unbounded
        .call(
            "PullImage",
            cri.client
                .pull_image(&args.image, auth(args.creds.as_deref())),
        )
        .await?;
    writeln!(out, "Image is up to date for {image_ref}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creds_split_at_the_first_colon() {
        let a = auth(Some("me:pa:ss")).unwrap();
        assert_eq!((a.username.as_str(), a.password.as_str()), ("me", "pa:ss"));
        let a = auth(Some("me")).unwrap();
        assert_eq!((a.username.as_str(), a.password.as_str()), ("me", ""));
        assert!(auth(None).is_none());
    }
}
