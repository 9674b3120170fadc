//! The health professions of the habilitation matrix (AC-1), typed: one value whatever the
//! spelling a source uses (the matrix's label `pharmacien`, the RPPS / TRE_G15 code `21`), so
//! that a rule about a profession (MS-2's pharmacy exception) is one comparison of values.

/// A health profession (the 19 of the habilitation matrix's decree).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profession {
    Medecin,
    ChirurgienDentiste,
    SageFemme,
    Pharmacien,
    Infirmier,
    MasseurKinesitherapeute,
    PedicurePodologue,
    Ergotherapeute,
    Psychomotricien,
    Orthophoniste,
    Orthoptiste,
    ManipulateurRadio,
    TechnicienLaboratoire,
    Audioprothesiste,
    OpticienLunetier,
    ProthesisteOrthesiste,
    Dieteticien,
    PreparateurPharmacie,
    Psychologue,
}

impl Profession {
    pub const ALL: [Profession; 19] = [
        Profession::Medecin,
        Profession::ChirurgienDentiste,
        Profession::SageFemme,
        Profession::Pharmacien,
        Profession::Infirmier,
        Profession::MasseurKinesitherapeute,
        Profession::PedicurePodologue,
        Profession::Ergotherapeute,
        Profession::Psychomotricien,
        Profession::Orthophoniste,
        Profession::Orthoptiste,
        Profession::ManipulateurRadio,
        Profession::TechnicienLaboratoire,
        Profession::Audioprothesiste,
        Profession::OpticienLunetier,
        Profession::ProthesisteOrthesiste,
        Profession::Dieteticien,
        Profession::PreparateurPharmacie,
        Profession::Psychologue,
    ];

    /// The label the habilitation matrix and the directory use (`pharmacien`).
    pub const fn label(self) -> &'static str {
        match self {
            Profession::Medecin => "medecin",
            Profession::ChirurgienDentiste => "chirurgien_dentiste",
            Profession::SageFemme => "sage_femme",
            Profession::Pharmacien => "pharmacien",
            Profession::Infirmier => "infirmier",
            Profession::MasseurKinesitherapeute => "masseur_kinesitherapeute",
            Profession::PedicurePodologue => "pedicure_podologue",
            Profession::Ergotherapeute => "ergotherapeute",
            Profession::Psychomotricien => "psychomotricien",
            Profession::Orthophoniste => "orthophoniste",
            Profession::Orthoptiste => "orthoptiste",
            Profession::ManipulateurRadio => "manipulateur_radio",
            Profession::TechnicienLaboratoire => "technicien_laboratoire",
            Profession::Audioprothesiste => "audioprothesiste",
            Profession::OpticienLunetier => "opticien_lunetier",
            Profession::ProthesisteOrthesiste => "prothesiste_orthesiste",
            Profession::Dieteticien => "dieteticien",
            Profession::PreparateurPharmacie => "preparateur_pharmacie",
            Profession::Psychologue => "psychologue",
        }
    }

    /// The TRE_G15 "ProfessionSante" code (RPPS, Pro Santé Connect, the Annuaire Santé), where
    /// the profession has one of its own.
    pub fn from_g15(code: &str) -> Option<Profession> {
        Some(match code.trim() {
            "10" => Profession::Medecin,
            "21" => Profession::Pharmacien,
            "26" => Profession::Audioprothesiste,
            "28" => Profession::OpticienLunetier,
            "40" => Profession::ChirurgienDentiste,
            "50" => Profession::SageFemme,
            "60" | "69" => Profession::Infirmier,
            "70" => Profession::MasseurKinesitherapeute,
            "80" => Profession::PedicurePodologue,
            "81" | "82" | "83" => Profession::ProthesisteOrthesiste,
            "86" => Profession::TechnicienLaboratoire,
            "91" => Profession::Orthophoniste,
            "92" => Profession::Orthoptiste,
            "93" => Profession::Psychologue,
            "94" => Profession::Ergotherapeute,
            "95" => Profession::Dieteticien,
            "96" => Profession::Psychomotricien,
            "98" => Profession::ManipulateurRadio,
            _ => return None,
        })
    }

    /// A profession as any source spells it: the matrix's label or a TRE_G15 code.
    pub fn parse(s: &str) -> Option<Profession> {
        let s = s.trim();
        Profession::ALL
            .into_iter()
            .find(|p| p.label() == s)
            .or_else(|| Profession::from_g15(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_profession_whatever_the_spelling_ms2() {
        assert_eq!(Profession::parse("pharmacien"), Some(Profession::Pharmacien));
        assert_eq!(Profession::parse("21"), Some(Profession::Pharmacien));
        assert_eq!(Profession::parse(" 10 "), Some(Profession::Medecin));
        assert_eq!(Profession::parse("plombier"), None);
        for p in Profession::ALL {
            assert_eq!(Profession::parse(p.label()), Some(p));
        }
    }

    #[test]
    fn every_profession_of_the_shipped_matrix_is_typed_ac1() {
        let m = crate::access::HabilitationMatrix::default_matrix();
        let listed: Vec<&str> = m.professions().collect();
        assert_eq!(listed.len(), Profession::ALL.len());
        for label in listed {
            assert!(Profession::parse(label).is_some(), "{label}");
        }
    }
}
