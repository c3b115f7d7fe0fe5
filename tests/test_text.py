import pytest

from biomedica.text import guess_language


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Kaplan-Meier curves of overall survival for the low and high expression groups in the cohort", "en"),
        ("Die Verteilung der Patienten nach dem Alter und der Dauer der Erkrankung in den Gruppen", "de"),
        ("Distribution de la taille des tumeurs chez les patients selon le stade de la maladie", "fr"),
        ("Distribución de los pacientes según la edad y el sexo en el grupo de estudio", "es"),
        ("Distribuição dos pacientes de acordo com a idade e o sexo no grupo de estudo", "pt"),
        ("患者的CT影像显示肺部结节和胸腔积液", "zh"),
        ("Распределение пациентов по возрасту и полу в исследуемой группе", "ru"),
    ],
)
def test_guess_language(text, language):
    assert guess_language(text).language == language


def test_short_or_stopword_free_text_is_undetermined():
    assert guess_language("Western blot").language == "und"
    assert guess_language("CT MRI PET SPECT DWI FLAIR ADC").language == "und"


def test_greek_letters_in_english_captions_stay_english():
    guess = guess_language("Expression of TNF-α, IL-1β and IFN-γ in the serum of the treated mice was measured by ELISA")
    assert guess.language == "en" and guess.confidence > 0.5
