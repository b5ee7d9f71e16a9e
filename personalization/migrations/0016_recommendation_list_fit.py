from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('personalization', '0015_email_bodies_lz4'),
    ]

    operations = [
        migrations.AddField(
            model_name='recommendationlist',
            name='fit',
            field=models.CharField(blank=True, default='', help_text='Empty for the lists served; the id of the fit that is writing it else.', max_length=32, verbose_name='fit'),
        ),
        migrations.AddField(
            model_name='recommendationlist',
            name='part',
            field=models.PositiveSmallIntegerField(default=0, verbose_name='part of the fit'),
        ),
        migrations.RemoveConstraint(
            model_name='recommendationlist',
            name='pzn_recommendation_list_unique',
        ),
        migrations.AddConstraint(
            model_name='recommendationlist',
            constraint=models.UniqueConstraint(fields=('fit', 'name', 'key'), name='pzn_recommendation_list_fit_unique'),
        ),
    ]
