"""Presets of the sample-region generator and the vocabularies it draws from.

Every number here is documented in datasets/README.md (what it echoes and why).
"""

from __future__ import annotations

from dataclasses import dataclass, field

PERIOD_START = "2026-09-01"
PERIOD_END = "2027-05-31"

# competency_id, name, group, short_name (short_name names deficit profiles / clusters)
COMPETENCIES: list[tuple[str, str, str, str]] = [
    ("fl_reading", "Читательская грамотность", "functional_literacy", "читательская"),
    ("fl_math", "Математическая грамотность", "functional_literacy", "математическая"),
    ("fl_science", "Естественнонаучная грамотность", "functional_literacy", "естественнонаучная"),
    ("fl_financial", "Финансовая грамотность", "functional_literacy", "финансовая"),
    ("fl_global", "Глобальные компетенции", "functional_literacy", "глобальные"),
    ("fl_creative", "Креативное мышление", "functional_literacy", "креативное"),
    ("subject", "Предметные знания", "professional", "предметные"),
    ("methodical", "Методическая компетентность", "professional", "методическая"),
    ("assessment", "Оценивание образовательных результатов", "professional", "оценивание"),
    ("fgos", "Обновлённые ФГОС", "professional", "ФГОС"),
    ("inclusive", "Инклюзивное образование", "professional", "инклюзия"),
    ("at_risk", "Работа с обучающимися с рисками учебной неуспешности", "professional", "риски неуспешности"),
    ("upbringing", "Воспитательная работа", "professional", "воспитание"),
    ("digital", "Цифровая образовательная среда", "professional", "цифровая среда"),
    ("management", "Управление образовательной организацией", "management", "управление"),
]
COMP_IDS = [c[0] for c in COMPETENCIES]
COMP_INDEX = {c: i for i, c in enumerate(COMP_IDS)}
MANAGEMENT = COMP_INDEX["management"]

# Latent deficit profiles: key -> (description, low competencies). "management" is drawn by
# managers only; "no_deficits" has no low competency.
PROFILES: dict[str, tuple[str, list[str]]] = {
    "functional_literacy": ("Функциональная грамотность: чтение, математика, естествознание",
                            ["fl_reading", "fl_math", "fl_science"]),
    "fl_financial_global": ("Финансовая грамотность, глобальные компетенции, креативность",
                            ["fl_financial", "fl_global", "fl_creative"]),
    "assessment_fgos": ("Оценивание и обновлённые ФГОС", ["assessment", "fgos", "methodical"]),
    "inclusive_at_risk": ("Инклюзия и риски учебной неуспешности", ["inclusive", "at_risk"]),
    "upbringing": ("Воспитательная работа и профилактика", ["upbringing", "at_risk"]),
    "digital": ("Цифровая образовательная среда", ["digital", "fl_creative"]),
    "subject_methodical": ("Предметная и методическая подготовка", ["subject", "methodical"]),
    "management": ("Управление образовательной организацией (руководители)",
                   ["management", "fgos", "assessment"]),
    "no_deficits": ("Без выраженных дефицитов", []),
}

# The 7 directions of regional quality management (Krymsky district report, seed 003) with the
# competencies each addresses (first = main).
DIRECTIONS: list[tuple[str, list[str]]] = [
    ("Система качества подготовки обучающихся", ["fl_reading", "fl_math", "assessment", "subject"]),
    ("Система работы школ с низкими образовательными результатами",
     ["at_risk", "inclusive", "assessment", "methodical"]),
    ("Система выявления, поддержки и развития способностей и талантов у детей и молодежи",
     ["fl_creative", "subject", "fl_science"]),
    ("Система работы по самоопределению и профессиональной ориентации обучающихся",
     ["upbringing", "fl_financial", "fl_global"]),
    ("Система эффективности работы руководителей образовательных организаций",
     ["management", "fgos", "assessment"]),
    ("Система обеспечения профессионального развития педагогических работников",
     ["methodical", "fgos", "digital"]),
    ("Система организации воспитания обучающихся", ["upbringing", "inclusive", "at_risk"]),
]

# Themes of internship sites (titles echo the seed documents 000, 001, 003), by direction index,
# with the competencies addressed (first = main) and a popularity weight.
THEMES: list[tuple[int, str, list[str], float]] = [
    (0, "Современные технологии по формированию функциональной грамотности",
     ["fl_reading", "fl_math", "fl_science", "methodical"], 3.0),
    (0, "Формирование читательской грамотности обучающихся", ["fl_reading", "methodical", "assessment"], 2.0),
    (0, "Математическая и естественнонаучная грамотность в основной школе",
     ["fl_math", "fl_science", "subject"], 2.0),
    (0, "Финансовая грамотность и глобальные компетенции школьников",
     ["fl_financial", "fl_global", "fl_creative"], 1.5),
    (0, "Оценивание образовательных результатов по обновлённым ФГОС", ["assessment", "fgos", "methodical"], 2.0),
    (1, "Школа – территория успеха", ["at_risk", "methodical", "assessment"], 1.5),
    (1, "Благополучная школа – школа успеха всех и каждого", ["at_risk", "upbringing", "inclusive"], 1.5),
    (1, "Переходим в эффективный режим работы: обучение на опыте", ["management", "at_risk", "assessment"], 1.0),
    (2, "Портфолио достижений учащихся как средство создания ситуации успеха",
     ["fl_creative", "assessment", "upbringing"], 1.0),
    (2, "Проектная и исследовательская деятельность обучающихся", ["fl_creative", "fl_science", "subject"], 1.5),
    (3, "Профессиональное самоопределение обучающихся в условиях непрерывного образования",
     ["upbringing", "fl_financial", "fl_global"], 1.0),
    (4, "Актуальные вопросы управления образовательной организацией в современных условиях",
     ["management", "fgos"], 1.0),
    (4, "Внутренняя система оценки качества образования", ["management", "assessment"], 0.8),
    (5, "От профессионализма учителя к успеху ученика", ["methodical", "subject", "fgos"], 1.5),
    (5, "Цифровая образовательная среда: ФГИС «Моя школа» на уроке", ["digital", "methodical"], 1.5),
    (5, "Школа наставничества", ["methodical", "fgos", "digital"], 1.0),
    (6, "Организация профилактической работы в образовательных организациях", ["upbringing", "at_risk"], 1.0),
    (6, "Инклюзивная практика: обучение детей с ОВЗ", ["inclusive", "at_risk", "methodical"], 1.2),
    (6, "Программа воспитания: от плана к результату", ["upbringing", "fgos"], 1.0),
]

SESSION_FORMS_SHORT = ["Семинар-практикум", "Педагогическая мастерская", "Педагогическая лаборатория",
                       "Деловая игра", "Мастер-класс", "Дискуссионная площадка"]
SESSION_FORMS_LONG = ["Стажировка", "Стажёрская практика", "Интенсив"]

# Subjects: (genitive, dative, "на уроках ...")
SUBJECTS: list[tuple[str, str, str]] = [
    ("математики", "математике", "на уроках математики"),
    ("русского языка", "русскому языку", "на уроках русского языка"),
    ("литературы", "литературе", "на уроках литературы"),
    ("истории", "истории", "на уроках истории"),
    ("обществознания", "обществознанию", "на уроках обществознания"),
    ("физики", "физике", "на уроках физики"),
    ("химии", "химии", "на уроках химии"),
    ("биологии", "биологии", "на уроках биологии"),
    ("географии", "географии", "на уроках географии"),
    ("информатики", "информатике", "на уроках информатики"),
    ("иностранного языка", "иностранному языку", "на уроках иностранного языка"),
    ("физической культуры", "физической культуре", "на уроках физической культуры"),
]
SUBJ = {s[0]: i for i, s in enumerate(SUBJECTS)}
LEVELS = ["в начальной школе", "в основной школе", "в средней школе", "в малокомплектной школе"]

# Program title templates by main competency. Placeholders: {lessons} ("на уроках X" from the
# competency's subject list, or a level), {level}, {gen} (subject genitive), {dat} (dative),
# {aud} (audience of management/upbringing programs).
_ALL = list(range(len(SUBJECTS)))
PROGRAM_TEMPLATES: dict[str, tuple[list[str], list[int]]] = {
    "fl_reading": (["Формирование читательской грамотности обучающихся {lessons}",
                    "Смысловое чтение и работа с информацией {level}",
                    "Стратегии смыслового чтения {lessons}"], _ALL),
    "fl_math": (["Формирование математической грамотности обучающихся {lessons}",
                 "Практико-ориентированные задачи как средство формирования математической грамотности {level}"],
                [SUBJ["математики"], SUBJ["физики"], SUBJ["информатики"], SUBJ["географии"]]),
    "fl_science": (["Формирование естественнонаучной грамотности обучающихся {lessons}",
                    "Учебный эксперимент как средство формирования естественнонаучной грамотности {lessons}"],
                   [SUBJ["физики"], SUBJ["химии"], SUBJ["биологии"], SUBJ["географии"]]),
    "fl_financial": (["Формирование финансовой грамотности обучающихся {lessons}",
                      "Основы финансовой грамотности в образовательной практике {level}"],
                     [SUBJ["математики"], SUBJ["обществознания"], SUBJ["географии"]]),
    "fl_global": (["Формирование глобальных компетенций обучающихся {lessons}",
                   "Глобальные компетенции: межкультурное взаимодействие {level}"],
                  [SUBJ["истории"], SUBJ["обществознания"], SUBJ["географии"], SUBJ["иностранного языка"]]),
    "fl_creative": (["Развитие креативного мышления обучающихся {lessons}",
                     "Креативное мышление: задания и методики {level}"], _ALL),
    "subject": (["Актуальные вопросы преподавания {gen} в условиях обновлённых ФГОС",
                 "Углублённое изучение {gen}: содержание и методика",
                 "Подготовка обучающихся к олимпиадам по {dat}",
                 "Подготовка обучающихся к ГИА по {dat}"], _ALL),
    "methodical": (["Современный урок {gen}: проектирование и анализ",
                    "Системно-деятельностный подход в обучении {dat}",
                    "Методика преподавания {gen} {level}"], _ALL),
    "assessment": (["Формирующее оценивание {lessons}",
                    "Оценивание образовательных результатов обучающихся {level}",
                    "Критериальное оценивание и подготовка к ГИА по {dat}"], _ALL),
    "fgos": (["Реализация требований обновлённых ФГОС {level}",
              "Федеральные рабочие программы по {dat}: проектирование и реализация",
              "Обновлённые ФГОС ООО и СОО: преподавание {gen}"], _ALL),
    "inclusive": (["Инклюзивное образование обучающихся с ОВЗ {level}",
                   "Адаптированные основные общеобразовательные программы {level}",
                   "Психолого-педагогическое сопровождение обучающихся с ОВЗ {level}"], _ALL),
    "at_risk": (["Работа с обучающимися с рисками учебной неуспешности {level}",
                 "Подходы к преодолению факторов риска снижения результатов обучения {lessons}",
                 "Преодоление учебной неуспешности {lessons}"], _ALL),
    "upbringing": (["Организация воспитательной работы {aud}",
                    "Реализация рабочей программы воспитания {level}",
                    "Профориентационная работа в школе: проект «Билет в будущее»",
                    "Классное руководство: современные практики {aud}"], _ALL),
    "digital": (["Цифровая образовательная среда {lessons}",
                 "ФГИС «Моя школа» в работе учителя {gen}",
                 "Цифровые инструменты учителя {level}",
                 "Искусственный интеллект в образовательной практике {level}"], _ALL),
    "management": (["Управление образовательной организацией {aud}",
                    "Эффективный руководитель: управление качеством образования {aud}",
                    "Перевод школы в эффективный режим работы {aud}",
                    "Подготовка стажерской практики в образовательной организации на основе менторства {aud}"],
                   _ALL),
}
AUDIENCES = {
    "upbringing": ["для классных руководителей", "для советников директора по воспитанию",
                   "для педагогов-организаторов", "в начальной школе", "в основной школе",
                   "в малокомплектной школе"],
    "management": ["для руководителей", "для управленческих команд", "для заместителей директора",
                   "для руководителей ШНОР", "для кадрового резерва"],
}
# Secondary competencies a program on the main one also addresses.
RELATED: dict[str, list[str]] = {
    "fl_reading": ["methodical", "assessment", "fl_global", "fgos"],
    "fl_math": ["subject", "methodical", "fl_financial", "assessment"],
    "fl_science": ["subject", "fl_creative", "methodical"],
    "fl_financial": ["fl_math", "fl_global", "upbringing"],
    "fl_global": ["fl_reading", "upbringing", "fl_creative"],
    "fl_creative": ["methodical", "digital", "fl_science"],
    "subject": ["methodical", "fgos", "assessment"],
    "methodical": ["fgos", "subject", "digital"],
    "assessment": ["fgos", "methodical", "at_risk"],
    "fgos": ["methodical", "assessment", "subject"],
    "inclusive": ["at_risk", "methodical", "upbringing"],
    "at_risk": ["inclusive", "assessment", "methodical"],
    "upbringing": ["at_risk", "inclusive", "fl_global"],
    "digital": ["methodical", "fl_creative", "assessment"],
    "management": ["fgos", "assessment", "at_risk"],
}
# Popularity of each main competency in catalogues (functional literacy and the updated FGOS are
# the most common course themes of 2022-2025 regional catalogues).
PROGRAM_MAIN_WEIGHTS: dict[str, float] = {
    "fl_reading": 1.6, "fl_math": 1.5, "fl_science": 1.3, "fl_financial": 1.0, "fl_global": 0.8,
    "fl_creative": 0.8, "subject": 1.6, "methodical": 1.3, "assessment": 1.2, "fgos": 1.6,
    "inclusive": 1.0, "at_risk": 1.0, "upbringing": 1.1, "digital": 1.2, "management": 0.8,
}

ACADEMY = "ФГАОУ ДПО «Академия Минпросвещения России»"


@dataclass(frozen=True)
class Municipality:
    name: str
    lat: float
    lon: float
    population: int
    kind: str            # city (>= 100k) | town | rural | north | venue
    real: bool           # coordinates and population from russian-cities.csv
    component: int       # road component; -1: no road (unreachable)
    school_suffix: str   # how schools of it are named: "г. Томска", "(Сельский район 07)"
    teacher_weight: float  # share of teachers relative to population (0: no schools with teachers)


@dataclass(frozen=True)
class Preset:
    name: str
    region_name: str
    description: str
    teachers: int
    schools: int
    geo_seed: int
    avg_school_size: tuple[float, float]  # (towns, rural)
    low_frac: float
    leader_frac: float
    profiles: tuple[str, ...]
    associations: tuple[tuple[str, float], ...]
    mentor_frac: float
    mentor_external_frac: float
    mentor_affiliations: tuple[str, ...]
    n_sites: int
    n_site_sessions: int
    site_days: tuple[float, ...]          # probabilities of 1..5 days
    site_cost_per_day: tuple[int, int]
    site_cost_zero: float
    site_prefix: str
    site_mode: str                        # "directions" (one direction per site) | "themes"
    n_programs: int
    online_share: float
    n_online_sessions: int
    n_offline_sessions: int
    providers: tuple[tuple[str, float, str], ...]  # name, weight, registry prefix
    voucher_share: float
    voucher_range: tuple[int, int]
    budget_cover: tuple[float, float] = (0.4, 0.7)
    region_cover: tuple[float, float] = (0.45, 0.6)
    no_budget_row_frac: float = 0.12
    host_schools: tuple[tuple[str, int, str], ...] = ()  # (municipality name, count, kind) no teachers
    fixed_school_names: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)


GENERIC_ASSOCIATIONS = (
    ("ШМО учителей начальных классов", 0.27),
    ("ШМО учителей русского языка и литературы", 0.14),
    ("ШМО учителей математики и информатики", 0.13),
    ("ШМО учителей естественнонаучного цикла", 0.12),
    ("ШМО учителей общественных наук", 0.10),
    ("ШМО учителей иностранных языков", 0.10),
    ("ШМО учителей физической культуры, ОБЗР и технологии", 0.14),
)

PRESETS: dict[str, Preset] = {
    "tomsk-school-44": Preset(
        name="tomsk-school-44",
        region_name="МАОУ СОШ № 44 г. Томска (Томская область)",
        description=("Одна школа: 84 педагога МАОУ СОШ № 44 г. Томска в трёх ШМО; площадки и "
                     "наставники — в других школах Томска, Северска, Асино и методисты ТОИПКРО."),
        teachers=84, schools=1, geo_seed=44,
        avg_school_size=(84.0, 84.0), low_frac=0.0, leader_frac=0.0,
        profiles=("functional_literacy", "assessment_fgos", "subject_methodical", "digital",
                  "inclusive_at_risk", "management", "no_deficits"),
        associations=(("ШМО учителей предметов здоровьесберегающего цикла", 0.28),
                      ("ШМО учителей предметов математического цикла", 0.38),
                      ("ШМО учителей общественных наук", 0.34)),
        mentor_frac=0.08, mentor_external_frac=1.0,
        mentor_affiliations=("ОГБУ ДПО «ТОИПКРО» (методист)", "школа-партнёр (педагог-наставник)"),
        n_sites=8, n_site_sessions=16, site_days=(0.3, 0.35, 0.2, 0.1, 0.05),
        site_cost_per_day=(1000, 3000), site_cost_zero=0.25,
        site_prefix="Стажировочная площадка", site_mode="themes",
        n_programs=30, online_share=0.35, n_online_sessions=16, n_offline_sessions=44,
        providers=(("ОГБУ ДПО «Томский областной институт повышения квалификации и переподготовки "
                    "работников образования» (ТОИПКРО)", 0.55, "70-ТОИПКРО"),
                   ("ФГБОУ ВО «Томский государственный педагогический университет»", 0.2, "70-ТГПУ"),
                   ("ФГАОУ ВО «Национальный исследовательский Томский государственный университет»",
                    0.1, "70-ТГУ"),
                   (ACADEMY, 0.15, "ФР")),
        voucher_share=0.5, voucher_range=(10000, 30000),
        no_budget_row_frac=0.0,
        host_schools=(("г. Томск", 4, "city"), ("г. Северск", 1, "city"), ("г. Асино", 1, "town")),
        fixed_school_names=("МАОУ СОШ № 44 г. Томска",),
    ),
    "krymsky-district": Preset(
        name="krymsky-district",
        region_name="Крымский район (Краснодарский край)",
        description=("Муниципалитет: 19 школ Крымского района, ~700 педагогов; муниципальные "
                     "стажировочные площадки школ-лидеров по 7 направлениям (21 мероприятие за год)."),
        teachers=700, schools=19, geo_seed=23,
        avg_school_size=(45.0, 30.0), low_frac=0.105, leader_frac=0.53,
        profiles=("functional_literacy", "assessment_fgos", "inclusive_at_risk", "upbringing",
                  "digital", "management", "no_deficits"),
        associations=GENERIC_ASSOCIATIONS,
        mentor_frac=0.04, mentor_external_frac=0.2,
        mentor_affiliations=("Управление образования МО Крымский район (ТМС)",
                             "ГБОУ ИРО Краснодарского края (тьютор)"),
        n_sites=14, n_site_sessions=21, site_days=(0.6, 0.4, 0.0, 0.0, 0.0),
        site_cost_per_day=(500, 2000), site_cost_zero=0.3,
        site_prefix="Муниципальная стажировочная площадка", site_mode="directions",
        n_programs=40, online_share=0.3, n_online_sessions=18, n_offline_sessions=60,
        providers=(("ГБОУ ДПО «Институт развития образования» Краснодарского края", 0.55, "23-ИРО"),
                   ("ФГБОУ ВО «Кубанский государственный университет»", 0.15, "23-КубГУ"),
                   ("ФГБОУ ВО «Армавирский государственный педагогический университет»", 0.1, "23-АГПУ"),
                   (ACADEMY, 0.2, "ФР")),
        voucher_share=0.35, voucher_range=(10000, 30000),
        # courses of the district's own methodical service in Krymsk and of the regional institute
        # in Krasnodar; other municipalities (rural settlements) get a few field sessions
        extra={"venue_weights": {"г. Крымск": 1.2, "г. Краснодар": 1.0}},
    ),
    "altai-krai": Preset(
        name="altai-krai",
        region_name="Алтайский край",
        description=("Регион: ~21 000 педагогов, ~1 100 школ, 60 муниципалитетов (12 реальных городов и "
                     "синтетические районные центры); ~7% школ — ШНОР (проект «500+»); РИП при "
                     "школах-лидерах; каталог ДПП АИРО им. А.М. Топорова и др."),
        teachers=21000, schools=1100, geo_seed=22,
        avg_school_size=(50.0, 13.0), low_frac=0.07, leader_frac=0.08,
        profiles=("functional_literacy", "fl_financial_global", "assessment_fgos", "inclusive_at_risk",
                  "digital", "subject_methodical", "management", "no_deficits"),
        associations=GENERIC_ASSOCIATIONS,
        mentor_frac=0.04, mentor_external_frac=0.3,
        mentor_affiliations=("КАУ ДПО «АИРО им. А.М. Топорова» (ЦНППМ)",
                             "муниципальная методическая служба"),
        n_sites=120, n_site_sessions=260, site_days=(0.25, 0.3, 0.2, 0.15, 0.1),
        site_cost_per_day=(1500, 3000), site_cost_zero=0.15,
        site_prefix="РИП", site_mode="themes",
        n_programs=200, online_share=0.35, n_online_sessions=140, n_offline_sessions=330,
        providers=(("КАУ ДПО «Алтайский институт развития образования им. А.М. Топорова»", 0.5, "22-АИРО"),
                   ("ФГБОУ ВО «Алтайский государственный педагогический университет»", 0.15, "22-АлтГПУ"),
                   ("ФГБОУ ВО «Алтайский государственный университет»", 0.1, "22-АлтГУ"),
                   (ACADEMY, 0.25, "ФР")),
        voucher_share=0.45, voucher_range=(10000, 30000),
    ),
    "krasnoyarsk-krai": Preset(
        name="krasnoyarsk-krai",
        region_name="Красноярский край",
        description=("Регион: ~23 000 педагогов на огромной территории (23 реальных города и "
                     "синтетические районные центры; север без дорог); у каждого педагога "
                     "персонифицированный сертификат на ДПО (ККИПК и др.)."),
        teachers=23000, schools=950, geo_seed=24,
        avg_school_size=(50.0, 15.0), low_frac=0.07, leader_frac=0.08,
        profiles=("functional_literacy", "assessment_fgos", "inclusive_at_risk", "upbringing",
                  "digital", "subject_methodical", "management", "no_deficits"),
        associations=GENERIC_ASSOCIATIONS,
        mentor_frac=0.04, mentor_external_frac=0.3,
        mentor_affiliations=("КГАУ ДПО «ККИПК» (ЦНППМ)", "муниципальная методическая служба"),
        n_sites=130, n_site_sessions=280, site_days=(0.25, 0.3, 0.2, 0.15, 0.1),
        site_cost_per_day=(1500, 3000), site_cost_zero=0.15,
        site_prefix="Базовая площадка", site_mode="themes",
        n_programs=220, online_share=0.35, n_online_sessions=150, n_offline_sessions=360,
        providers=(("КГАУ ДПО «Красноярский краевой институт повышения квалификации и профессиональной "
                    "переподготовки работников образования» (ККИПК)", 0.5, "24-ККИПК"),
                   ("ФГБОУ ВО «Красноярский государственный педагогический университет им. В.П. Астафьева»",
                    0.15, "24-КГПУ"),
                   ("ФГАОУ ВО «Сибирский федеральный университет»", 0.1, "24-СФУ"),
                   (ACADEMY, 0.25, "ФР")),
        voucher_share=1.0, voucher_range=(15000, 40000),
    ),
    "krasnodar-krai": Preset(
        name="krasnodar-krai",
        region_name="Краснодарский край",
        description=("Регион: ~38 000 педагогов, ~1 200 школ; 26 реальных городов края (Крымский район — "
                     "как в пресете krymsky-district: Крымск и десять сельских поселений) и синтетические "
                     "сельские районы; краевые инновационные площадки; каталог ДПП ИРО Краснодарского края "
                     "и др."),
        teachers=38000, schools=1200, geo_seed=23,
        avg_school_size=(55.0, 22.0), low_frac=0.07, leader_frac=0.08,
        profiles=("functional_literacy", "fl_financial_global", "assessment_fgos", "inclusive_at_risk",
                  "upbringing", "digital", "subject_methodical", "management", "no_deficits"),
        associations=GENERIC_ASSOCIATIONS,
        mentor_frac=0.04, mentor_external_frac=0.3,
        mentor_affiliations=("ГБОУ ИРО Краснодарского края (ЦНППМ)", "муниципальная методическая служба"),
        n_sites=200, n_site_sessions=440, site_days=(0.25, 0.3, 0.2, 0.15, 0.1),
        site_cost_per_day=(1500, 3000), site_cost_zero=0.15,
        site_prefix="Краевая инновационная площадка", site_mode="themes",
        n_programs=320, online_share=0.35, n_online_sessions=240, n_offline_sessions=560,
        providers=(("ГБОУ ДПО «Институт развития образования» Краснодарского края", 0.5, "23-ИРО"),
                   ("ФГБОУ ВО «Кубанский государственный университет»", 0.15, "23-КубГУ"),
                   ("ФГБОУ ВО «Армавирский государственный педагогический университет»", 0.1, "23-АГПУ"),
                   (ACADEMY, 0.25, "ФР")),
        voucher_share=0.45, voucher_range=(10000, 30000),
    ),
}

KRYMSKY_SETTLEMENTS = [
    "Адагумское", "Варениковское", "Гладковское", "Кеслеровское", "Киевское", "Мерчанское",
    "Молдаванское", "Нижнебаканское", "Пригородное", "Троицкое",
]
