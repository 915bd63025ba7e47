//! `edge health`: one GET of a running edge's `/_edge/health` (or `/_edge/ready`), exit 0 on
//! 200 and 1 otherwise, so container health checks need no curl in the image.

use std::process::ExitCode;
use std::time::Duration;

pub fn run(url: &str, ready: bool, timeout: Duration) -> ExitCode {
    let path = if ready {
        crate::observe::health::READY_PATH
    } else {
        crate::observe::health::HEALTH_PATH
    };
    let target = format!("{}{path}", url.trim_end_matches('/'));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("edge health: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(ask(&target, timeout)) {
        Ok((200, body)) => {
            println!("{body}");
            ExitCode::SUCCESS
        }
        Ok((status, body)) => {
            eprintln!("edge health: {target} answered {status}: {body}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("edge health: {target}: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn ask(target: &str, timeout: Duration) -> Result<(u16, String), String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .get(target)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    let status = response.status().as_u16();
    let body = response.text().await.map_err(|e| e.to_string())?;
    Ok((status, body))
}
