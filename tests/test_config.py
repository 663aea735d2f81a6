import re

import nbformat
import pytest
import papermill as pm

from cxvalue import config, report
from cxvalue.exceptions import ParameterError


def test_defaults_are_valid_and_nested():
    p = config.load_params()
    assert p["metric"] == "nps"
    assert p["scenario"]["detractor_to_passive"] == 0.2
    assert config.reference_group(p) == "passive"
    assert list(config.bands_for(p)) == ["detractor", "passive", "promoter"]


def test_set_dotted_keys_and_yaml(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text("discount_rate: 0.1\nscenario:\n  one_off_cost: 1000\ncontact_cost:\n  phone: 20\n")
    p = config.load_params(f, ["scenario.detractor_to_passive=0.35", "as_of=2024-06-30", "metric=csat"])
    assert p["discount_rate"] == 0.1
    assert p["scenario"]["one_off_cost"] == 1000.0
    assert p["scenario"]["detractor_to_passive"] == 0.35
    assert p["as_of"] == "2024-06-30"
    assert p["contact_cost"]["phone"] == 20.0 and p["contact_cost"]["email"] == 6.0  # merged, not replaced
    assert config.reference_group(p) == "neutral"


@pytest.mark.parametrize("item, fragment", [
    ("scenario.detractor_to_pasive=0.2", "unknown parameter 'scenario.detractor_to_pasive'"),
    ("window_months=twelve", "'window_months': expected a whole number"),
    ("discount_rate=-0.1", "'discount_rate': must be zero or more"),
    ("gross_margin=1.5", "'gross_margin': must be a share"),
    ("metric=nss", "'metric': expected one of nps, csat, ces"),
    ("as_of=31/12/2024", "'as_of': expected a date"),
    ("reference_group=happy", "'reference_group': 'happy' is not a group"),
    ("contact_cost.phone=-3", "'contact_cost.phone': expected a number >= 0"),
    ("bands.nps.detractor=[0, 5]", "must cover each score 0-10 exactly once"),
    ("noequals", "expected key=value"),
])
def test_bad_parameters_name_the_key(item, fragment):
    with pytest.raises(ParameterError) as err:
        config.load_params(overrides=[item])
    assert fragment in str(err.value)


def test_custom_bands():
    p = config.load_params(overrides=["bands.nps={low: [0, 4], mid: [5, 8], high: [9, 10]}", "reference_group=mid"])
    assert config.bands_for(p) == {"low": [0, 4], "mid": [5, 8], "high": [9, 10]}


def test_bad_yaml_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("- just\n- a list\n")
    with pytest.raises(ParameterError, match="must hold a mapping"):
        config.load_params(f)
    with pytest.raises(ParameterError, match="does not exist"):
        config.load_params(tmp_path / "missing.yaml")


def test_notebook_parameter_defaults_match_config():
    """Each notebook's parameters cell declares only known parameters, with the documented defaults."""
    defaults = config.to_notebook(config.load_params())
    for nb in report.notebooks():
        declared = pm.inspect_notebook(str(nb))
        assert "data" in declared and "results_dir" in declared, nb.name
        # every assignment of the parameters cell is one papermill can read (a line it cannot parse is
        # silently not a parameter: the run could not set it)
        cell = next(c for c in nbformat.read(nb, as_version=4).cells if "parameters" in c.metadata.get("tags", []))
        assigned = [line.split("=")[0].strip() for line in cell.source.splitlines() if re.match(r"\w+ = ", line)]
        assert sorted(assigned) == sorted(declared), nb.name
        for name, info in declared.items():
            if name in ("data", "results_dir", "output_dir", "runs_dir", "analysis_dir"):  # where to read and write
                continue
            assert name in defaults, f"{nb.name}: parameter {name} is not a cxvalue parameter"
            assert info["help"], f"{nb.name}: parameter {name} has no comment"
            value = eval(info["default"])  # literal defaults only
            expected = defaults[name]
            if name == "bands":
                assert value == {}
            else:
                assert (value or None) == (expected or None), f"{nb.name}: {name} default {value!r} != {expected!r}"


def test_describe_lists_every_parameter():
    text = config.describe()
    for p in config.PARAMETERS:
        assert p.name in text


def test_a_mapping_as_first_argument_means_overrides():
    assert config.load_params({"as_of": "2024-01-31"})["as_of"] == "2024-01-31"
    assert config.load_params({"as_of": "2024-01-31"}, ["metric=ces"])["metric"] == "ces"


# --------------------------------------------------------------------------- the source block


def test_source_block_relative_files_become_absolute(tmp_path):
    """``file`` paths start from the parameter file's folder; the notebooks get them absolute."""
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "orders.csv").write_text("CustID;OrderDate;NetValue\n")
    f = tmp_path / "cx.yaml"
    f.write_text(
        "source:\n"
        "  transactions: {file: exports/orders.csv, columns: {customer_id: CustID, Date: OrderDate},\n"
        "                 decimal: ',', date_format: '%d/%m/%Y', delimiter: ';'}\n"
        "  customers: {table: crm_accounts, columns: {customer_id: AccountNo}}\n"
        "  responses: {query: 'SELECT id AS customer_id FROM survey'}\n")
    p = config.load_params(f, ["source.transactions.columns.amount=NetValue", 'source.contacts.delimiter="\\t"'])
    tx = p["source"]["transactions"]
    assert tx["file"] == str((tmp_path / "exports" / "orders.csv").resolve())
    assert tx["columns"] == {"customer_id": "CustID", "date": "OrderDate", "amount": "NetValue"}  # merged; keys lower case
    assert (tx["decimal"], tx["date_format"], tx["delimiter"]) == (",", "%d/%m/%Y", ";")
    assert p["source"]["customers"] == {"table": "crm_accounts", "columns": {"customer_id": "AccountNo"}}
    assert p["source"]["contacts"] == {"delimiter": "\t"}
    # a later layer's file, table or query replaces the earlier one
    p2 = config.load_params(f, ["source.customers.query=SELECT 1"])
    assert p2["source"]["customers"] == {"query": "SELECT 1", "columns": {"customer_id": "AccountNo"}}
    # papermill carries it both ways, unchanged
    assert config.to_notebook(p)["source"] == p["source"]
    assert config.from_notebook(config.to_notebook(p))["source"] == p["source"]


def test_source_block_defaults_to_empty():
    assert config.load_params()["source"] == {}
    assert config.load_params(overrides=["source.customers={}"])["source"] == {}


@pytest.mark.parametrize("item, fragment", [
    ("source=3", "'source': expected table -> {file | table | query"),
    ("source.orders.file=x.csv", "'source.orders': unknown table; expected one of customers, responses"),
    ("source.customers=crm", "'source.customers': expected a mapping"),
    ("source.customers.fiel=x.csv", "'source.customers.fiel': unknown key; expected one of file, table, query"),
    ("source.customers={file: a.csv, table: b}", "'source.customers': give one of file, table or query, not file and table"),
    ("source.customers.file=nowhere.csv", "'source.customers.file': no such file"),
    ("source.customers.table=", "'source.customers.table': expected text"),
    ("source.customers.delimiter=';;'", "'source.customers.delimiter': expected one character"),
    ("source.customers.decimal=x", "'source.customers.decimal': expected ',' or '.'"),
    ("source.customers.date_format=dd/mm/yyyy", "'source.customers.date_format': expected a strftime format"),
    ("source.responses={query: 'SELECT 1', decimal: ','}", "'source.responses.decimal': applies to files"),
    ("source.customers.columns=[1]", "'source.customers.columns': expected contract name -> your column"),
    ("source.customers.columns.customer_id=5", "'source.customers.columns.customer_id': expected the name of your column"),
    ("source.customers.columns={customer_id: A, referred_by: ' a '}", "column ' a ' is mapped twice"),
])
def test_bad_source_block_names_the_key(item, fragment):
    with pytest.raises(ParameterError) as err:
        config.load_params(overrides=[item])
    assert fragment in str(err.value)
