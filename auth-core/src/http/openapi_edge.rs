//! The answers every operation can get besides its own: the edge's (path checks, rate
//! limits, identity, body limits, breakers) and the core's request extractors (media type,
//! malformed JSON, wrong shape). Added to the document once here, so no handler can forget
//! one and the contract lists what a client really sees.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Ref, Type};
use utoipa::openapi::{Content, OpenApi, RefOr, ResponseBuilder};
use utoipa::Modify;

pub struct EdgeAnswers;

/// (status, component name, description, carries Retry-After).
const SHARED: [(&str, &str, &str, bool); 10] = [
    ("400", "BadRequest", "The edge refused the path or request (`invalid_path`, `bad_request`), or the body is not JSON (`malformed_request`)", false),
    ("401", "Unauthenticated", "No access token, or a malformed, expired, forged or revoked one (`token_missing`, `invalid_token`)", false),
    ("403", "Forbidden", "The token lacks a role the route needs (`forbidden`) or a confirmed email (`email_not_verified`)", false),
    ("404", "NotFound", "Nothing at this path, or no such resource of the caller (`not_found`)", false),
    ("413", "PayloadTooLarge", "The body is larger than the route allows (`body_too_large`, `payload_too_large`)", false),
    ("415", "UnsupportedMediaType", "The body is not `application/json` (`unsupported_media_type`)", false),
    ("422", "Unprocessable", "Well-formed JSON of the wrong shape, or a value the API refuses (`invalid_request`)", false),
    ("429", "TooManyRequests", "A rate limit of the edge (`rate_limited`, RateLimit-* headers) or a throttle of the core (`too_many_attempts`); wait Retry-After seconds", true),
    ("431", "HeaderTooLarge", "The request's header block is larger than the edge allows (`header_too_large`)", false),
    ("503", "Unavailable", "A dependency is down or saturated (the database, the limiter's Redis, the upstream); try again after Retry-After (`unavailable`, `limiter_unavailable`, `no_healthy_upstream`)", true),
];

impl Modify for EdgeAnswers {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (_, name, description, retry_after) in SHARED {
            let mut response = ResponseBuilder::new().description(description).content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            );
            if retry_after {
                let seconds = ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0));
                response = response.header(
                    "Retry-After",
                    HeaderBuilder::new()
                        .schema(seconds)
                        .description(Some("Seconds to wait before trying again"))
                        .build(),
                );
            }
            components
                .responses
                .insert(name.to_string(), RefOr::T(response.build()));
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            let has_params = path.contains('{');
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add_shared(op, has_params);
            }
        }
    }
}

fn add_shared(op: &mut Operation, has_params: bool) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_body = op.request_body.is_some();
    // query parameters are checked by the core too (a bad value is a 422)
    let has_query = op.parameters.as_ref().is_some_and(|ps| {
        ps.iter()
            .any(|p| p.parameter_in == utoipa::openapi::path::ParameterIn::Query)
    });
    for (status, name, _, _) in SHARED {
        let applies = match status {
            "400" | "429" | "431" | "503" => true,
            "401" | "403" => secured,
            "404" => has_params || secured,
            "413" | "415" => has_body,
            "422" => has_body || has_query,
            _ => false,
        };
        if applies {
            op.responses
                .responses
                .entry(status.to_string())
                .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
        }
    }
}
