"""Word lists for the demo and load data sets (fictional names, ``.example`` domains)."""

from __future__ import annotations

FIRST_NAMES = (
    "Anna", "Ben", "Clara", "David", "Elena", "Felix", "Greta", "Hannah", "Ivan", "Julia",
    "Karim", "Lena", "Marco", "Nina", "Oskar", "Paula", "Quentin", "Rosa", "Samir", "Tina",
    "Umut", "Vera", "Jonas", "Mia", "Lukas", "Sofia", "Emil", "Leonie", "Noah", "Ida",
)  # fmt: skip

LAST_NAMES = (
    "Becker", "Schmidt", "Novak", "Rossi", "Fischer", "Weber", "Meyer", "Wagner", "Kowalski",
    "Hoffmann", "Schulz", "Keller", "Braun", "Yilmaz", "Dubois", "Jansen", "Costa", "Lang",
    "Richter", "Wolf", "Neumann", "Schwarz", "Krüger", "Hartmann", "Lehmann",
)  # fmt: skip

COMPANIES = (
    "Nordwind Logistics GmbH", "Bäckerei Sonnenschein", "Havel Dental Practice",
    "Kiez Coffee Roasters",
    "Spree Solar Installations", "Altstadt Property Management", "Blue Harbour Shipping",
    "Grünwald Landscaping", "Lindenhof Hotel", "Marktplatz Pharmacy", "Oberbaum Architects",
    "Prenzlauer Fitness Club", "Quartier Bike Repairs", "Rixdorf Print Shop",
    "Schöneberg Auto Service",
    "Tempelhof Event Catering", "Uferwerk IT Consulting", "Viktoria Daycare", "Wedding Brewery",
    "Zehlendorf Veterinary Clinic", "Adler Electrical Contractors", "Birkenhof Organic Farm",
    "Charlotte Bakery Chain", "Donau Freight Forwarding", "Elbe Medical Supplies",
)  # fmt: skip

POSITIONS = (
    "Managing director", "Office manager", "Finance lead", "Operations manager", "Owner",
    "HR manager", "Fleet manager", "Head of facilities",
)  # fmt: skip

STREETS = (
    "Hauptstraße", "Gartenweg", "Lindenallee", "Bahnhofstraße", "Am Markt", "Schillerstraße",
    "Rosenweg", "Kastanienallee", "Uferstraße", "Bergstraße",
)  # fmt: skip

CITIES = (
    "10115 Berlin", "20095 Hamburg", "80331 Munich", "50667 Cologne", "60311 Frankfurt",
    "04109 Leipzig", "01067 Dresden", "28195 Bremen", "30159 Hanover", "90402 Nuremberg",
)  # fmt: skip

INSURERS = ("Allianz", "AXA", "Generali", "Zurich", "ERGO", "HDI", "Gothaer", "R+V")

# (product, typical annual premium in EUR, typical deal value in EUR)
PRODUCTS = (
    ("Motor", 650, 900), ("Home & contents", 320, 500), ("Term life", 480, 4_000),
    ("Private health", 3_600, 6_000), ("Public liability", 900, 1_500),
    ("Commercial property", 4_200, 8_000), ("Fleet", 12_000, 20_000), ("Cyber", 2_400, 3_500),
    ("Travel", 120, 200), ("Professional indemnity", 1_800, 2_500),
)  # fmt: skip

SOURCES = ("Referral", "Website", "Cold call", "Trade fair", "Partner", "Existing client")

ACTIVITY_LINES: dict[str, tuple[tuple[str, str], ...]] = {
    "note": (
        ("Prefers e-mail", "Please contact by e-mail, not before 10 am."),
        ("Budget", "Budget is tight this quarter; revisit after the annual accounts."),
        ("Competitor quote", "Has a cheaper quote from a direct insurer; coverage is thinner."),
        ("Family", "Second child expected in spring: review life cover."),
    ),
    "call": (
        ("Follow-up call", "Walked through the proposal; wants a lower deductible option."),
        ("Renewal call", "Happy with the service; asked about bundling home and motor."),
        ("Claim question", "Asked how to report a small water damage claim."),
        ("Intro call", "First contact; sending the needs questionnaire."),
    ),
    "meeting": (
        ("Coverage review", "Reviewed all policies; liability limits too low for new contracts."),
        ("Site visit", "Visited the premises for the property risk survey."),
        ("Annual review", "Annual review done; two policies to renew next quarter."),
    ),
    "email": (
        ("Quote sent", "Sent the quote with three coverage options."),
        ("Documents sent", "Sent the policy documents and the payment schedule."),
        ("Reminder", "Reminded about the missing signed application form."),
    ),
}
