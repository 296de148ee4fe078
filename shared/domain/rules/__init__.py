"""The rules domain: which pushes deploy where (pure). Import the public names from here.

Where the pieces live:
- `document`: the rules file as a whole (`parse_rules`, `load_rules_file`, `RulesFile`);
- `entry`: one entry of `rules:` (repository, tag policy, targets);
- `fields`: `RuleProblem`, `RulesError` and the `FieldReader` every part of the parser uses;
- `yaml_loader`: safe YAML with line numbers and no duplicate keys;
- `rollout_settings`: the `rollout:`, `smoke:` and `verify:` parts;
- `planning`: the `Rule` model and `plan()`, which says for each rule why it matched or not;
- `policies`: image-tag policies (semver, regex, glob); `versions`: version keys and semver ranges;
- `target_names`: target templates (`pr-{group:pr}`) and Azure resource-name hygiene;
- `convention`: the zero-config rule; `resource_tags`: rules from `acr-deploy.*` Azure resource tags.
Image references and registry entries have their own module, `shared.domain.references`.
"""

from shared.domain.rules.convention import convention_rule
from shared.domain.rules.document import RulesFile, load_rules_file, parse_rules
from shared.domain.rules.fields import RuleProblem, RulesError
from shared.domain.rules.planning import PlanResult, RepositoryPattern, Rule, RuleDecision, TargetTemplate, plan
from shared.domain.rules.resource_tags import tag_rule_problems, tag_rules_from_apps

__all__ = [
    "PlanResult", "RepositoryPattern", "Rule", "RuleDecision", "RuleProblem", "RulesError",
    "RulesFile", "TargetTemplate", "convention_rule", "load_rules_file", "parse_rules", "plan",
    "tag_rule_problems", "tag_rules_from_apps",
]
