//! The CapabilityStatement (`/fhir/metadata`).

#[allow(unused_imports)]
use super::*;

pub(super) async fn metadata(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let p = Params::parse(q)?;
    let iss = crate::oauth::issuer(&s, &headers);
    // Each type's parameters as the search checks them (`ResourceType::search_params`).
    let search = |t: ResourceType| -> Value {
        json!(
            t.search_params()
                .iter()
                .map(|(n, ty)| json!({"name": n, "type": ty}))
                .collect::<Vec<_>>()
        )
    };
    let mut resources = vec![
        json!({"type": "Patient", "interaction": [{"code": "read"}, {"code": "search-type"}], "searchParam": search(ResourceType::Patient)}),
        json!({"type": "DocumentReference", "interaction": [{"code": "read"}, {"code": "search-type"}],
               "searchParam": search(ResourceType::DocumentReference)}),
        json!({"type": "Binary", "interaction": [{"code": "read"}]}),
        json!({"type": "Practitioner", "interaction": [{"code": "read"}]}),
        json!({"type": "PractitionerRole", "interaction": [{"code": "read"}]}),
        json!({"type": "Observation", "interaction": [{"code": "read"}, {"code": "search-type"}, {"code": "create"}, {"code": "delete"}],
               "searchParam": search(ResourceType::Observation)}),
        json!({"type": "AuditEvent", "interaction": [{"code": "search-type"}],
               "searchParam": search(ResourceType::AuditEvent)}),
        json!({"type": "Provenance", "interaction": [{"code": "read"}, {"code": "search-type"}],
               "searchParam": search(ResourceType::Provenance)}),
        json!({"type": "Communication", "interaction": [{"code": "read"}, {"code": "search-type"}],
               "searchParam": search(ResourceType::Communication)}),
        json!({"type": "Appointment", "interaction": [{"code": "read"}, {"code": "search-type"}, {"code": "create"}],
               "searchParam": search(ResourceType::Appointment)}),
        json!({"type": "ExplanationOfBenefit", "interaction": [{"code": "read"}, {"code": "search-type"}],
               "documentation": "Reimbursements of the compulsory health insurance (last 24 months); date is the date of care.",
               "searchParam": search(ResourceType::ExplanationOfBenefit)}),
    ];
    for t in ResourceType::ALL.into_iter().filter(|t| t.is_profile()) {
        let mut interaction = vec![json!({"code": "read"}), json!({"code": "search-type"})];
        if t.is_writable_profile() {
            interaction.push(json!({"code": "create"}));
            interaction.push(json!({"code": "update"}));
        }
        interaction.push(json!({"code": "delete"}));
        resources.push(json!({"type": t.as_str(), "interaction": interaction,
                              "searchParam": search(t)}));
    }
    for r in resources.iter_mut() {
        let is_patient = r["type"] == "Patient";
        let Some(list) = r["interaction"].as_array_mut() else {
            continue;
        };
        let creates = list.iter().any(|i| i["code"] == "create");
        let reads = list.iter().any(|i| i["code"] == "read");
        let searches = list.iter().any(|i| i["code"] == "search-type");
        if reads {
            list.push(json!({"code": "vread"}));
            list.push(json!({"code": "history-instance"}));
        }
        if searches && !is_patient {
            list.push(json!({"code": "history-type"}));
        }
        if creates {
            r["conditionalCreate"] = json!(true);
        }
    }
    resources[0]["searchRevInclude"] = json!(
        ResourceType::REVINCLUDABLE
            .iter()
            .map(|t| format!("{t}:patient"))
            .collect::<Vec<_>>()
    );
    resources[0]["operation"] = json!([
        {"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"},
        {"name": "summary", "definition": "http://hl7.org/fhir/uv/ips/OperationDefinition/summary"}
    ]);
    resources[1]["interaction"] = json!([{"code": "read"}, {"code": "vread"}, {"code": "history-instance"}, {"code": "history-type"}, {"code": "search-type"}, {"code": "create"}, {"code": "delete"}]);
    let v = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": s.store.now().to_rfc3339(),
        "kind": "instance",
        "software": { "name": "Carnet", "version": env!("CARGO_PKG_VERSION") },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [{
            "mode": "server",
            "interaction": [{"code": "batch"}, {"code": "transaction"}],
            "documentation": "Every request is decided, traced and notified by Carnet's gate as the caller. Searches are patient-scoped; unsupported parameters are refused.",
            "security": {
                "extension": [{
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [
                        {"url": "authorize", "valueUri": format!("{iss}/oauth/authorize")},
                        {"url": "token", "valueUri": format!("{iss}/oauth/token")},
                        {"url": "revoke", "valueUri": format!("{iss}/oauth/revoke")},
                        {"url": "introspect", "valueUri": format!("{iss}/oauth/introspect")},
                    ],
                }],
                "service": [{
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR"}],
                    "text": "Bearer token: a referenced app's (SMART on FHIR, authorisation code + PKCE), an establishment's system (SMART Backend Services), a professional's or a holder's session",
                }],
            },
            "resource": resources,
        }],
    });
    Ok(respond(StatusCode::OK, &v, p.pretty()))
}
