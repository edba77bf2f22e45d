//! Iris's sessions overview on actix-web: only a logged-in visitor may read `/secret`;
//! `/login` logs in, `/logout` logs out. The same app as `--example overview` (axum).
//!
//! ```sh
//! cargo run -p sessio-examples --example actix-overview
//! curl -s http://127.0.0.1:8080/secret                        # Forbidden
//! curl -s -I http://127.0.0.1:8080/login                      # Set-Cookie: mycookiesessionnameid=...
//! ```

use actix_web::{
    body::MessageBody,
    dev::{ServiceFactory, ServiceRequest, ServiceResponse},
    web, App, HttpResponse, HttpServer,
};
use sessio::Sessions;
use sessio_actix::{Error, Session, SessionsExt};

pub(crate) const COOKIE: &str = "mycookiesessionnameid";

/// The app, for `HttpServer::new` and for `actix_web::test::init_service`.
pub(crate) fn app(
    sessions: &Sessions,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .wrap(sessions.middleware())
        .route("/secret", web::get().to(secret))
        .route("/login", web::get().to(login))
        .route("/logout", web::get().to(logout))
}

async fn secret(session: Session) -> Result<HttpResponse, Error> {
    // Check if the user is authenticated.
    if !session.get_or("authenticated", false)? {
        return Ok(HttpResponse::Forbidden().body("Forbidden"));
    }
    // Print the secret message.
    Ok(HttpResponse::Ok().body("The cake is a lie!"))
}

async fn login(session: Session) -> Result<&'static str, Error> {
    // Authentication goes here.
    // ...
    // A new id on every change of privilege (session fixation).
    session.regenerate();
    // Set the user as authenticated.
    session.set("authenticated", &true)?;
    Ok("")
}

async fn logout(session: Session) -> Result<&'static str, Error> {
    // Revoke the user's authentication.
    session.set("authenticated", &false)?;
    Ok("")
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sessions = Sessions::builder().cookie_name(COOKIE).build()?;
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = std::net::TcpListener::bind(&addr)?;
    println!("listening on http://{}", listener.local_addr()?);
    HttpServer::new(move || app(&sessions))
        .listen(listener)?
        .run()
        .await?;
    Ok(())
}
