# A person keeps one group: accounts store theirs. The report's lookups get an index that
# fits them (a visitor's exposures of one group around an instant). The report's rules
# changed (attribution strictly after the exposure; visitors shown both groups left out), so
# the roll-ups are rebuilt by their next refresh; until then the report reads the raw rows.

from django.db import migrations, models


def keep_the_groups_of_accounts(apps, schema_editor):
    Visitor = apps.get_model("personalization", "Visitor")
    for in_control_group in (False, True):
        Visitor.objects.filter(user__isnull=False, in_control_group=in_control_group).update(
            fixed_control_group=in_control_group
        )


def rebuild_the_rollups(apps, schema_editor):
    ReportRollup = apps.get_model("personalization", "ReportRollup")
    ReportRollup.objects.update(rolled_up_to=None)


class Migration(migrations.Migration):

    dependencies = [
        ('personalization', '0008_jobs_shared_state'),
    ]

    operations = [
        migrations.AddField(
            model_name='visitor',
            name='fixed_control_group',
            field=models.BooleanField(blank=True, help_text='The group of the person, fixed when an account was first linked to this visitor and kept for every device of that account, whatever CONTROL_GROUP_PERCENT later says; empty for a visitor without an account, whose group follows from its id.', null=True, verbose_name='group kept for the account'),
        ),
        migrations.RunPython(keep_the_groups_of_accounts, migrations.RunPython.noop),
        migrations.RemoveIndex(
            model_name='exposure',
            name='pzn_exposure_visitor',
        ),
        migrations.AddIndex(
            model_name='exposure',
            index=models.Index(fields=['visitor', 'is_control', 'created_at'], name='pzn_exposure_group'),
        ),
        migrations.RunPython(rebuild_the_rollups, migrations.RunPython.noop),
    ]
