//! Static files, built into the binary and served under content-hashed names with long cache lifetimes.

use actix_web::{HttpResponse, web};
use sha2::{Digest, Sha256};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../static/style.css"),
    },
    Asset {
        name: "password.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/password.js"),
    },
    Asset {
        name: "countdown.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/countdown.js"),
    },
    Asset {
        name: "follow.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/follow.js"),
    },
    Asset {
        name: "forms.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/forms.js"),
    },
    Asset {
        name: "bankid.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/bankid.js"),
    },
];

/// The assets with their hashed names (`style.3f2a9c1b.css`).
#[derive(Clone)]
pub struct StaticAssets {
    hashed: Vec<(String, usize)>,
}

impl Default for StaticAssets {
    fn default() -> Self {
        Self::new()
    }
}

impl StaticAssets {
    pub fn new() -> Self {
        let hashed = ASSETS
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let hash = hex::encode(&Sha256::digest(a.body)[..5]);
                let (stem, ext) = a.name.rsplit_once('.').unwrap_or((a.name, ""));
                (format!("{stem}.{hash}.{ext}"), i)
            })
            .collect();
        Self { hashed }
    }

    /// The URL path of an asset by its plain name.
    pub fn url(&self, name: &str) -> String {
        self.hashed
            .iter()
            .find(|(_, i)| ASSETS[*i].name == name)
            .map(|(h, _)| format!("/static/{h}"))
            .unwrap_or_default()
    }

    fn get(&self, hashed_name: &str) -> Option<&'static Asset> {
        self.hashed.iter().find(|(h, _)| h == hashed_name).map(|(_, i)| &ASSETS[*i])
    }
}

/// The site's icon (a star), at a fixed address: `/favicon.svg` for pages that link it, and
/// `/favicon.ico`, which browsers ask for by themselves.
pub async fn favicon() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header(("Cache-Control", "public, max-age=86400"))
        .body(&include_bytes!("../../static/favicon.svg")[..])
}

pub async fn serve(path: web::Path<String>, state: web::Data<super::AppState>) -> HttpResponse {
    match state.assets.get(&path) {
        Some(asset) => HttpResponse::Ok()
            .content_type(asset.content_type)
            .insert_header(("Cache-Control", "public, max-age=31536000, immutable"))
            .body(asset.body),
        None => HttpResponse::NotFound().insert_header(("Cache-Control", "no-store")).finish(),
    }
}
