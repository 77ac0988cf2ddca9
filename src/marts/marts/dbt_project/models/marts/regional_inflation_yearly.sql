-- Per region and year: the average index, the average 12-month change and how many months reported.
select
    region_code,
    max(region_name) as region_name,
    extract(year from month_start)::integer as year,
    round(avg(cpi)::numeric, 2) as avg_cpi,
    round(avg(change_12m_pct)::numeric, 2) as avg_change_12m_pct,
    count(cpi) as months_reported
from {{ ref('stg_regional_cpi') }}
group by region_code, extract(year from month_start)
