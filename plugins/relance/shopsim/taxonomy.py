"""Static vocabulary of the synthetic shop: categories, complements, names, time zones.

Everything here is plain data; ``catalog.py`` and ``customers.py`` turn it into arrays.
Order matters (indices are used as codes), so append rather than reorder.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Affinity groups: a customer's favourite one or two drive most of their views, carts and orders.
GROUPS = ("dog", "cat", "beauty", "coffee_tea", "flowers_gifts", "home", "apparel")
# How many customers favour each group (relative).
GROUP_WEIGHTS = (0.20, 0.14, 0.16, 0.16, 0.10, 0.12, 0.12)


@dataclass(frozen=True)
class Subcategory:
    key: str
    group: str
    product_type: str  # Google product taxonomy style path
    weight: float  # share of the catalogue
    price: float  # median price in EUR
    nouns: tuple[str, ...]
    variants: tuple[str, ...]
    sizes: tuple[tuple[str, float], ...] = (("", 1.0),)  # (label, interval/price multiplier)
    repurchase_days: int = 0  # > 0: consumable, bought again about every N days (for multiplier 1)
    gift: bool = False
    complements: tuple[str, ...] = ()
    keywords: tuple[str, ...] = field(default_factory=tuple)


SUBCATEGORIES: tuple[Subcategory, ...] = (
    # --- dog
    Subcategory("dog_food", "dog", "Animalerie > Chien > Croquettes", 6, 34.0,
                ("Croquettes chien adulte", "Croquettes chiot", "Croquettes chien senior",
                 "Croquettes chien sans céréales", "Croquettes chien stérilisé"),
                ("poulet", "saumon", "agneau & riz", "bœuf", "canard"),
                (("2 kg", 0.5), ("4 kg", 1.0), ("12 kg", 3.0)), repurchase_days=60,
                complements=("dog_bowl", "dog_treats", "dog_toys"), keywords=("croquettes chien", "croquette chiot")),
    Subcategory("dog_treats", "dog", "Animalerie > Chien > Friandises", 3, 6.5,
                ("Friandises dentaires", "Bâtonnets à mâcher", "Biscuits chien"),
                ("menthe", "poulet", "fromage", "bœuf"), (("200 g", 1.0), ("500 g", 2.2)), repurchase_days=21,
                complements=("dog_toys", "dog_food"), keywords=("friandise chien", "os à mâcher")),
    Subcategory("dog_bowl", "dog", "Animalerie > Chien > Gamelles", 2, 16.0,
                ("Gamelle inox", "Gamelle céramique", "Distributeur d'eau", "Tapis de gamelle"),
                ("S", "M", "L", "XL"), complements=("dog_food", "dog_treats"), keywords=("gamelle chien",)),
    Subcategory("dog_leash", "dog", "Animalerie > Chien > Laisses et colliers", 2, 22.0,
                ("Laisse nylon", "Collier cuir", "Harnais confort", "Laisse enrouleur"),
                ("noir", "rouge", "bleu marine", "camel"), complements=("dog_toys", "dog_treats"),
                keywords=("laisse chien", "harnais")),
    Subcategory("dog_toys", "dog", "Animalerie > Chien > Jouets", 2, 9.0,
                ("Balle rebondissante", "Corde à nœuds", "Peluche couinante", "Frisbee souple"),
                ("S", "M", "L"), complements=("dog_treats",), keywords=("jouet chien",)),
    # --- cat
    Subcategory("cat_food", "cat", "Animalerie > Chat > Croquettes", 5, 24.0,
                ("Croquettes chat adulte", "Croquettes chaton", "Croquettes chat stérilisé",
                 "Croquettes chat d'intérieur"),
                ("poulet", "saumon", "thon", "dinde"), (("1,5 kg", 0.6), ("3 kg", 1.0), ("7 kg", 2.2)),
                repurchase_days=45, complements=("cat_litter", "cat_bowl", "cat_toys"),
                keywords=("croquettes chat", "nourriture chat")),
    Subcategory("cat_litter", "cat", "Animalerie > Chat > Litière", 3, 12.0,
                ("Litière agglomérante", "Litière végétale", "Litière silice"),
                ("sans parfum", "lavande", "talc"), (("5 L", 0.6), ("10 L", 1.0), ("20 L", 2.0)),
                repurchase_days=30, complements=("cat_food",), keywords=("litière chat",)),
    Subcategory("cat_tree", "cat", "Animalerie > Chat > Arbres à chat", 1.5, 69.0,
                ("Arbre à chat", "Griffoir", "Hamac pour chat"),
                ("gris", "beige", "taupe"), (("80 cm", 1.0), ("140 cm", 1.8)), complements=("cat_toys",),
                keywords=("arbre à chat", "griffoir")),
    Subcategory("cat_toys", "cat", "Animalerie > Chat > Jouets", 2, 7.0,
                ("Canne à pêche plumes", "Souris à l'herbe à chat", "Balle grelot", "Tunnel pliable"),
                ("rose", "vert", "multicolore"), complements=("cat_tree",), keywords=("jouet chat",)),
    Subcategory("cat_bowl", "cat", "Animalerie > Chat > Gamelles", 1.5, 13.0,
                ("Gamelle surélevée", "Fontaine à eau", "Gamelle double"),
                ("blanc", "gris", "rose poudré"), complements=("cat_food",), keywords=("gamelle chat",)),
    # --- beauty
    Subcategory("shampoo", "beauty", "Beauté > Cheveux > Shampooing", 4, 11.0,
                ("Shampooing doux", "Shampooing solide", "Shampooing réparateur", "Shampooing antipelliculaire"),
                ("karité", "ortie", "camomille", "argan"), (("250 ml", 1.0), ("500 ml", 1.8)),
                repurchase_days=45, complements=("conditioner", "hairbrush"), keywords=("shampooing", "shampoing bio")),
    Subcategory("conditioner", "beauty", "Beauté > Cheveux > Après-shampooing", 2.5, 12.0,
                ("Après-shampooing démêlant", "Masque capillaire", "Baume nourrissant"),
                ("karité", "coco", "argan"), (("200 ml", 1.0),), repurchase_days=50,
                complements=("shampoo", "hairbrush"), keywords=("après shampooing", "masque cheveux")),
    Subcategory("face_cream", "beauty", "Beauté > Soin du visage > Crèmes hydratantes", 3, 24.0,
                ("Crème hydratante", "Crème de nuit", "Fluide matifiant", "Crème riche"),
                ("peaux sèches", "peaux mixtes", "peaux sensibles"), (("50 ml", 1.0),), repurchase_days=60,
                complements=("serum", "cleanser"), keywords=("crème visage", "hydratant")),
    Subcategory("serum", "beauty", "Beauté > Soin du visage > Sérums", 2, 32.0,
                ("Sérum vitamine C", "Sérum acide hyaluronique", "Sérum rétinol"),
                ("", "bio"), (("30 ml", 1.0),), repurchase_days=55, complements=("face_cream",),
                keywords=("sérum visage",)),
    Subcategory("cleanser", "beauty", "Beauté > Soin du visage > Démaquillants", 2, 14.0,
                ("Eau micellaire", "Gel nettoyant", "Huile démaquillante"),
                ("", "bio"), (("200 ml", 1.0), ("400 ml", 1.8)), repurchase_days=40,
                complements=("face_cream",), keywords=("démaquillant", "eau micellaire")),
    Subcategory("lipstick", "beauty", "Beauté > Maquillage > Rouges à lèvres", 2, 19.0,
                ("Rouge à lèvres mat", "Rouge à lèvres satiné", "Baume teinté"),
                ("rouge cerise", "nude", "framboise", "corail"), complements=("cleanser",),
                keywords=("rouge à lèvres",)),
    Subcategory("hairbrush", "beauty", "Beauté > Accessoires > Brosses", 1.5, 18.0,
                ("Brosse démêlante", "Brosse en bois", "Peigne en corne"),
                ("", "voyage"), complements=("shampoo",), keywords=("brosse cheveux",)),
    # --- coffee & tea
    Subcategory("coffee_beans", "coffee_tea", "Épicerie > Café > Café en grains", 5, 13.0,
                ("Café en grains", "Café moulu", "Café de spécialité"),
                ("Éthiopie", "Colombie", "Brésil", "Guatemala", "décaféiné"), (("500 g", 1.0), ("1 kg", 2.0)),
                repurchase_days=30, complements=("grinder", "mugs", "coffee_maker"),
                keywords=("café grains", "café moulu")),
    Subcategory("coffee_capsules", "coffee_tea", "Épicerie > Café > Capsules", 3, 5.5,
                ("Capsules compatibles", "Capsules compostables"),
                ("intense", "lungo", "ristretto", "décaféiné"), (("x10", 1.0), ("x50", 5.0)), repurchase_days=20,
                complements=("mugs",), keywords=("capsules café",)),
    Subcategory("tea", "coffee_tea", "Épicerie > Thé > Thé en vrac", 3, 9.0,
                ("Thé vert", "Thé noir", "Infusion", "Rooibos"),
                ("jasmin", "Earl Grey", "menthe", "agrumes", "fruits rouges"), (("100 g", 1.0), ("250 g", 2.4)),
                repurchase_days=40, complements=("teapot", "mugs"), keywords=("thé", "infusion")),
    Subcategory("grinder", "coffee_tea", "Maison > Cuisine > Moulins à café", 1.2, 45.0,
                ("Moulin à café manuel", "Moulin à café électrique"),
                ("inox", "noir", "bois"), complements=("coffee_beans",), keywords=("moulin café",)),
    Subcategory("coffee_maker", "coffee_tea", "Maison > Cuisine > Cafetières", 1.2, 39.0,
                ("Cafetière à piston", "Cafetière italienne", "Dripper"),
                ("3 tasses", "6 tasses", "8 tasses"), complements=("coffee_beans", "mugs"),
                keywords=("cafetière",)),
    Subcategory("teapot", "coffee_tea", "Maison > Cuisine > Théières", 1, 29.0,
                ("Théière fonte", "Théière verre", "Théière porcelaine"),
                ("0,8 L", "1,2 L"), complements=("tea",), keywords=("théière",)),
    Subcategory("mugs", "coffee_tea", "Maison > Cuisine > Tasses et mugs", 1.5, 12.0,
                ("Mug grès", "Tasses expresso", "Mug isotherme"),
                ("blanc", "bleu", "terracotta"), complements=("coffee_beans", "tea"), keywords=("mug", "tasse")),
    # --- flowers & gifts (gift category: purchase anniversaries)
    Subcategory("bouquets", "flowers_gifts", "Fleurs et cadeaux > Bouquets", 4, 39.0,
                ("Bouquet de roses", "Bouquet champêtre", "Bouquet de pivoines", "Bouquet de tulipes"),
                ("rouge", "blanc", "pastel", "multicolore"), (("S", 0.8), ("M", 1.0), ("L", 1.5)), gift=True,
                complements=("vases", "chocolates"), keywords=("bouquet", "livraison fleurs")),
    Subcategory("plants", "flowers_gifts", "Fleurs et cadeaux > Plantes", 2, 29.0,
                ("Orchidée", "Monstera", "Ficus", "Olivier en pot"), ("", "XL"), gift=True,
                complements=("vases",), keywords=("plante", "orchidée")),
    Subcategory("chocolates", "flowers_gifts", "Fleurs et cadeaux > Chocolats", 2, 19.0,
                ("Ballotin de chocolats", "Coffret pralinés", "Tablettes grand cru"),
                ("noir", "lait", "assortis"), (("250 g", 1.0), ("500 g", 1.8)), gift=True,
                complements=("bouquets",), keywords=("chocolats", "coffret chocolat")),
    Subcategory("gift_boxes", "flowers_gifts", "Fleurs et cadeaux > Coffrets cadeaux", 1.5, 45.0,
                ("Coffret bien-être", "Coffret gourmand", "Coffret découverte"),
                ("", "prestige"), gift=True, complements=("chocolates", "bouquets"), keywords=("coffret cadeau",)),
    Subcategory("vases", "flowers_gifts", "Fleurs et cadeaux > Vases", 1.2, 25.0,
                ("Vase en verre", "Vase céramique", "Soliflore"),
                ("transparent", "blanc", "sauge"), complements=("bouquets",), keywords=("vase",)),
    # --- home
    Subcategory("candles", "home", "Maison > Décoration > Bougies", 2.5, 18.0,
                ("Bougie parfumée", "Bougie cire de soja", "Coffret de bougies"),
                ("figue", "vanille", "ambre", "feu de bois"), (("180 g", 1.0), ("400 g", 2.0)), repurchase_days=40,
                complements=("candle_holders",), keywords=("bougie parfumée",)),
    Subcategory("candle_holders", "home", "Maison > Décoration > Photophores", 1, 15.0,
                ("Photophore", "Bougeoir laiton"), ("doré", "fumé", "ambre"), complements=("candles",),
                keywords=("photophore",)),
    Subcategory("throws", "home", "Maison > Linge de maison > Plaids", 1.5, 49.0,
                ("Plaid laine", "Plaid polaire", "Couvre-lit gaufré"),
                ("130x170", "150x200"), complements=("candles",), keywords=("plaid",)),
    Subcategory("detergent", "home", "Maison > Entretien > Lessive", 2.5, 11.0,
                ("Lessive liquide", "Lessive en poudre", "Lessive écologique"),
                ("fraîcheur", "savon de Marseille", "hypoallergénique"), (("1,5 L", 1.0), ("3 L", 2.0)),
                repurchase_days=35, complements=("softener",), keywords=("lessive",)),
    Subcategory("softener", "home", "Maison > Entretien > Adoucissant", 1.5, 6.0,
                ("Adoucissant", "Vinaigre ménager"), ("lavande", "fleur de coton"), (("1 L", 1.0),),
                repurchase_days=40, complements=("detergent",), keywords=("adoucissant",)),
    # --- apparel
    Subcategory("tshirts", "apparel", "Mode > Femme > T-shirts", 2.5, 25.0,
                ("T-shirt coton bio", "T-shirt col V", "Débardeur"),
                ("blanc", "noir", "marinière", "sauge"), (("S", 1.0), ("M", 1.0), ("L", 1.0)),
                complements=("socks", "scarves"), keywords=("t-shirt femme",)),
    Subcategory("shirts", "apparel", "Mode > Homme > Chemises", 2, 49.0,
                ("Chemise oxford", "Chemise lin", "Surchemise"),
                ("bleu ciel", "blanc", "kaki"), (("M", 1.0), ("L", 1.0), ("XL", 1.0)), complements=("socks",),
                keywords=("chemise homme",)),
    Subcategory("socks", "apparel", "Mode > Accessoires > Chaussettes", 1.5, 9.0,
                ("Chaussettes coton", "Chaussettes laine", "Lot de chaussettes"),
                ("rayées", "unies", "à motifs"), complements=("sneakers",), keywords=("chaussettes",)),
    Subcategory("scarves", "apparel", "Mode > Accessoires > Écharpes", 1.2, 35.0,
                ("Écharpe laine", "Foulard soie", "Snood"), ("gris", "moutarde", "bordeaux"),
                complements=("tshirts",), keywords=("écharpe",)),
    Subcategory("sneakers", "apparel", "Mode > Chaussures > Baskets", 1.5, 89.0,
                ("Baskets toile", "Baskets cuir", "Running"), ("blanc", "noir", "bleu"),
                (("38", 1.0), ("41", 1.0), ("44", 1.0)), complements=("socks",), keywords=("baskets",)),
)

BRANDS = {
    "dog": ("Canisto", "Royal Patte", "Crocky", "Vetalia", "Truffe & Co"),
    "cat": ("Félinor", "Royal Patte", "Miaou Bio", "Vetalia"),
    "beauty": ("Belle Onde", "Savonnerie Lune", "Aroma&Co", "Nuage", "L'Atelier Doux"),
    "coffee_tea": ("Maison Moka", "Torréfacteur Dupont", "Arabica Club", "Théodore", "Kettle & Co"),
    "flowers_gifts": ("Fleurs de Lou", "Atelier Pétale", "Chocolaterie Rivière", "Bergamote"),
    "home": ("Casa Lina", "Lumière & Cire", "Propre!", "Lin Dormant"),
    "apparel": ("Coton Bleu", "Maille & Co", "Urbanista", "Sillage"),
}

# Sub-categories whose brands are a narrower list than their group's.
SUBCATEGORY_BRANDS = {
    "coffee_beans": ("Maison Moka", "Torréfacteur Dupont", "Arabica Club"),
    "coffee_capsules": ("Maison Moka", "Arabica Club"),
    "tea": ("Théodore", "Kettle & Co"),
    "grinder": ("Kettle & Co", "Maison Moka"),
    "coffee_maker": ("Kettle & Co", "Maison Moka"),
    "teapot": ("Kettle & Co", "Théodore"),
    "mugs": ("Kettle & Co", "Maison Moka"),
    "bouquets": ("Fleurs de Lou", "Atelier Pétale"),
    "plants": ("Fleurs de Lou", "Atelier Pétale"),
    "vases": ("Atelier Pétale", "Bergamote"),
    "chocolates": ("Chocolaterie Rivière",),
    "gift_boxes": ("Bergamote", "Chocolaterie Rivière"),
    "candles": ("Lumière & Cire", "Casa Lina"),
    "candle_holders": ("Lumière & Cire", "Casa Lina"),
    "throws": ("Lin Dormant", "Casa Lina"),
    "detergent": ("Propre!", "La Lavandière"),
    "softener": ("Propre!", "La Lavandière"),
}

DESCRIPTION_TAILS = (
    "Livré en 48 h, retour gratuit sous 30 jours.",
    "Fabriqué en France, emballage recyclable.",
    "Le best-seller de la maison, noté 4,7/5 par nos clients.",
    "Composition soigneusement sélectionnée, sans compromis.",
    "Idéal au quotidien ; existe en plusieurs formats.",
)

# A few hostile but valid product titles (CSV quoting, HTML/JS, Jinja, header injection).
# (subcategory key, title)
HOSTILE_TITLES = (
    ("dog_bowl", 'Bol "anti-glouton", inox'),
    ("shampoo", 'Shampooing <script>alert("xss")</script> doux'),
    ("mugs", 'Mug "I ❤ coffee", 35 cl'),
    ("bouquets", "Bouquet l'Éclat, roses & pivoines"),
    ("throws", "Plaid {{ config }} {% raw %}130x170"),
    ("gift_boxes", "Coffret découverte\r\nBcc: victim@evil.example"),
)
HOSTILE_DESCRIPTION = 'Deux lignes :\n"premier choix", garanti; <b>gras</b> & co'

# --- customers
FIRST_NAMES_FR = ("Camille", "Léa", "Manon", "Chloé", "Inès", "Jade", "Louise", "Zoé", "Emma", "Sarah",
                  "Lucas", "Hugo", "Louis", "Gabriel", "Arthur", "Jules", "Nathan", "Théo", "Raphaël", "Noé",
                  "Élodie", "François", "Hélène", "Jérôme", "Anaïs", "Maëlle", "Benoît", "Cécile", "Loïc",
                  "Marie-Hélène")
LAST_NAMES_FR = ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
                 "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux",
                 "Vincent", "Fournier", "Morel", "Girard", "André", "Mercier", "Dupont", "Lambert",
                 "Bonnet", "François", "Martinez", "D'Angelo", "Le Goff")
FIRST_NAMES_EN = ("Olivia", "Amelia", "Isla", "Ava", "Mia", "Grace", "Emily", "Sophie", "Hannah", "Chloe",
                  "Oliver", "George", "Noah", "Arthur", "Harry", "Leo", "Jack", "Oscar", "William", "James",
                  "Siobhán", "Yuki", "Aiko", "Haruto", "Mary-Kate")
LAST_NAMES_EN = ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
                 "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall",
                 "O'Brien", "McAllister", "Nakamura", "Tanaka", "Sato", "Anderson-Smythe")
# Planted on a handful of customers: the product must escape them (HTML, headers, SQL, Jinja).
HOSTILE_FIRST_NAMES = ('Jean "JJ"', "<b>Marie</b>", "Eve\r\nBcc: victim@evil.example",
                       "Robert'); DROP TABLE customers;--", "{{ 7*7 }}", "  Zoé  ")

# (time zone, locale, context locale, country calling code, weight within the locale)
TIMEZONES = (
    ("Europe/Paris", "fr", "fr-FR", "33", 0.80),
    ("Europe/Brussels", "fr", "fr-BE", "32", 0.10),
    ("America/Montreal", "fr", "fr-CA", "1", 0.06),
    ("Europe/Zurich", "fr", "fr-CH", "41", 0.04),
    ("Europe/London", "en", "en-GB", "44", 0.45),
    ("America/New_York", "en", "en-US", "1", 0.22),
    ("America/Montreal", "en", "en-CA", "1", 0.08),
    ("Asia/Tokyo", "en", "en-JP", "81", 0.08),
    ("America/Los_Angeles", "en", "en-US", "1", 0.07),
    ("Australia/Sydney", "en", "en-AU", "61", 0.10),
)

EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
SIGNUP_METHODS = ("email", "google", "apple", "facebook")

# Relative activity by local hour of day (0..23): evenings and lunch peak.
DIURNAL = (0.25, 0.12, 0.06, 0.04, 0.04, 0.08, 0.25, 0.55, 0.85, 1.0, 1.05, 1.15, 1.35, 1.3, 1.1, 1.0,
           1.0, 1.1, 1.35, 1.7, 1.9, 1.8, 1.3, 0.7)
